"""Tests of the offline dataset loaders in ``autograder.datasets``.

The real-data tests, marked ``datasets(...)``, read the canonical files
wherever the loaders find them (CI sets ``AUTOGRADER_DATA_DIR`` to
``../shared/datasets``) and are skipped, with where they were looked for and
how to provide them, when they cannot be had (see ``conftest.py``). Everything else runs on small stand-in files
in temporary directories, with downloads disabled or pointed at local servers.
"""

import copy
import functools
import gzip
import hashlib
import http.server
import inspect
import io
import json
import os
import pickle
import re
import shutil
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from autograder import datasets
from autograder.datasets import (
    DatasetCorruptError,
    DatasetError,
    DatasetNotFoundError,
    UnknownDatasetError,
    _files,
    boston_housing,
    cifar10,
    fashion_mnist,
    grading,
    mnist,
)

SHARED_DIRS = [Path(d) for d in os.environ.get("AUTOGRADER_DATA_DIR", "").split(os.pathsep) if d]
LOADER_MODULES = [boston_housing, cifar10, fashion_mnist, grading, mnist]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def shared_file(*parts):
    """Path of a real data file in one of the AUTOGRADER_DATA_DIR directories."""
    for d in SHARED_DIRS:
        if d.joinpath(*parts).is_file():
            return d.joinpath(*parts)
    pytest.skip(f"{'/'.join(parts)} is in none of the AUTOGRADER_DATA_DIR directories")


@pytest.fixture(autouse=True, scope="session")
def _no_network_and_private_stamp_cache(tmp_path_factory):
    """Keep tests off the network and out of the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_OFFLINE", "1")
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data anywhere: empty data dir, kit dir, Keras home and user cache under tmp_path."""
    _files.manifest()  # read the real manifest before the kit folder is hidden
    for name in ("data", "kit", "home", "keras_home"):
        (tmp_path / name).mkdir()
    monkeypatch.delenv("AUTOGRADER_DATA_DIR", raising=False)
    monkeypatch.setenv("AUTOGRADER_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(_files, "kit_data_dir", lambda: tmp_path / "kit")
    return tmp_path


def spec_entry(dataset, filename, data, origins=None):
    entry = copy.deepcopy(_files.dataset_entry(dataset))
    entry["files"][filename].update(sha256=sha256(data), size=len(data))
    if origins is not None:
        entry["files"][filename]["origins"] = origins
    return entry


# ------------------------------------------------------------------ API and manifest


@pytest.mark.parametrize("module", LOADER_MODULES, ids=lambda m: m.__name__)
def test_loaders_take_data_dir_first_and_document_shapes(module):
    params = list(inspect.signature(module.load_data).parameters.values())
    assert params[0].name == "data_dir" and params[0].default is None
    doc = module.load_data.__doc__
    assert "shape (" in doc and "AUTOGRADER_DATA_DIR" in doc


def test_boston_signature_matches_keras_defaults():
    params = inspect.signature(boston_housing.load_data).parameters
    assert params["test_split"].default == 0.2 and params["seed"].default == 113


def test_manifest_describes_every_loader_file():
    entries = _files.manifest()
    assert sorted(entries) == sorted(datasets.LOADERS)
    subdirs = {name: entry["subdir"] for name, entry in entries.items()}
    assert subdirs == {
        "mnist": "mnist",
        "fashion_mnist": "fashion-mnist",
        "boston_housing": "boston_housing",
        "cifar10": "cifar10",
        "grading": "",
    }
    for entry in entries.values():
        assert {"homepage", "licence", "citation", "notes", "files"} <= set(entry)
        for spec in entry["files"].values():
            assert spec["sha256"] == "TO-BE-FILLED" or len(spec["sha256"]) == 64
            assert isinstance(spec["origins"], list)
    assert entries["cifar10"]["files"]["cifar10_train.npz"]["origins"] == []
    assert entries["grading"]["files"]["grading.npz"]["origins"] == []
    assert _files.kit_data_dir() == Path(__file__).resolve().parents[1] / "datasets"


# ------------------------------------------------------------------ real data


@pytest.mark.datasets("mnist")
def test_mnist_real():
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert (x_train.shape, x_train.dtype) == ((60000, 28, 28), np.uint8)
    assert (y_train.shape, y_train.dtype) == ((60000,), np.uint8)
    assert (x_test.shape, x_test.dtype) == ((10000, 28, 28), np.uint8)
    assert (y_test.shape, y_test.dtype) == ((10000,), np.uint8)
    assert y_train[1] == 0 and y_train[5] == 2
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    # The published sha256 of the uncompressed train-images-idx3-ubyte file.
    header = struct.pack(">4I", 2051, 60000, 28, 28)
    assert sha256(header + x_train.tobytes()) == "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    assert x_train.flags.writeable  # like Keras's arrays


@pytest.mark.datasets("fashion_mnist", "mnist")
def test_fashion_mnist_real():
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert (x_train.shape, x_train.dtype) == ((60000, 28, 28), np.uint8)
    assert (y_train.shape, y_train.dtype) == ((60000,), np.uint8)
    assert (x_test.shape, x_test.dtype) == ((10000, 28, 28), np.uint8)
    assert (y_test.shape, y_test.dtype) == ((10000,), np.uint8)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    # Same pixels as MNIST would be a wiring mistake.
    assert not np.array_equal(x_test[:10], mnist.load_data()[1][0][:10])


@pytest.mark.datasets("boston_housing")
def test_boston_housing_real():
    (x_train, y_train), (x_test, y_test) = boston_housing.load_data()
    assert (x_train.shape, x_train.dtype) == ((404, 13), np.float64)
    assert (y_train.shape, y_train.dtype) == ((404,), np.float64)
    assert (x_test.shape, x_test.dtype) == ((102, 13), np.float64)
    assert (y_test.shape, y_test.dtype) == ((102,), np.float64)
    expected_78 = [0.17171, 25, 5.13, 0, 0.453, 5.966, 93.4, 6.8185, 8, 284, 19.7, 378.08, 14.44]
    np.testing.assert_array_equal(x_train[78], expected_78)
    assert y_train[78] == 16.0
    # Values Keras users see in the default split.
    np.testing.assert_array_equal(
        x_train[0], [1.23247, 0, 8.14, 0, 0.538, 6.142, 91.7, 3.9769, 4, 307, 21, 396.9, 18.72]
    )
    np.testing.assert_array_equal(y_train[:10], [15.2, 42.3, 50, 21.1, 17.7, 18.5, 11.3, 15.6, 15.6, 14.4])
    # The split is a permutation of all 506 rows.
    table = np.loadtxt(shared_file("boston_housing", "housing.data"))
    assert sorted(np.concatenate([y_train, y_test])) == sorted(table[:, 13])


@pytest.mark.datasets("boston_housing")
def test_boston_housing_other_split_and_seed():
    (x_train, _), (x_test, _) = boston_housing.load_data(test_split=0.1, seed=0)
    assert x_train.shape == (455, 13) and x_test.shape == (51, 13)
    (x_default, _), _ = boston_housing.load_data()
    assert not np.array_equal(x_train[:404], x_default)


@pytest.mark.parametrize("test_split", [0, 1, -0.2, 1.5, "0.2", None])
def test_boston_test_split_out_of_range(test_split):
    with pytest.raises(ValueError, match="test_split"):
        boston_housing.load_data(test_split=test_split)


@pytest.fixture(scope="module")
def cifar():
    return cifar10.load_data()


@pytest.mark.datasets("cifar10")
def test_cifar10_shapes_and_dtypes(cifar):
    (x_train, y_train), (x_test, y_test) = cifar
    assert (x_train.shape, x_train.dtype) == ((50000, 32, 32, 3), np.uint8)
    assert (y_train.shape, y_train.dtype) == ((50000, 1), np.uint8)
    assert (x_test.shape, x_test.dtype) == ((10000, 32, 32, 3), np.uint8)
    assert (y_test.shape, y_test.dtype) == ((10000, 1), np.uint8)


@pytest.mark.datasets("cifar10")
def test_cifar10_known_values(cifar):
    (x_train, y_train), (x_test, y_test) = cifar
    assert y_test[:10, 0].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert np.bincount(y_train[:10000, 0]).tolist() == [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
    assert np.bincount(y_train[:, 0]).tolist() == [5000] * 10
    # Pixel values of the official (channel-planar) rows, seen channels-last.
    assert x_train[0, 0, :3, 0].tolist() == [59, 43, 50]  # first red values of data_batch_1[0]
    assert x_train[0, 31, 29:, 2].tolist() == [140, 84, 72]  # its last blue values
    assert x_train[1, 0, :3, 0].tolist() == [154, 126, 105]
    assert x_test[0, 0, :9, 0].tolist() == [158, 159, 165, 166, 160, 156, 162, 159, 158]
    assert x_test[0, 31, 29:, 2].tolist() == [124, 129, 110]
    np.testing.assert_allclose(x_test.mean(axis=(0, 1, 2)), [126.02464141, 123.7085042, 114.85431865])
    assert sha256(x_test.tobytes()) == "f9b1e2130bab680db56eb06d886f7f1ad0f1183907ceff4659d1735c890f5b04"
    assert sha256(y_test.tobytes()) == "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5"
    assert sha256(x_train.tobytes()) == "47af8b02cfcfb6cdf3dbbd1969ad7f1b70f4413f6f80f437b020ee4e5bc8304a"


@pytest.mark.skipif(
    not (_files.kit_data_dir() / "grading.npz").is_file(),
    reason="datasets/grading.npz has not been generated yet (datasets/tools/make_grading.py)",
)
def test_grading_real():
    x, y = grading.load_data()
    assert (x.shape, x.dtype) == ((2000, 3), np.float32)
    assert (y.shape, y.dtype) == ((2000, 1), np.float32)
    assert set(np.unique(y)) <= {0, 1, 2, 3, 4, 5}


@pytest.mark.datasets("boston_housing", "fashion_mnist")
def test_load_by_name_dispatches():
    (x_train, _), _ = datasets.load("boston_housing", test_split=0.5)
    assert x_train.shape == (253, 13)
    (_, y_train), _ = datasets.load("fashion-mnist")
    assert y_train.shape == (60000,)


@pytest.mark.datasets("mnist")
def test_verified_files_are_stamped(tmp_path, monkeypatch):
    # A fresh stamp file, and nothing remembered from earlier tests in this process.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_files, "_verified", {})
    path = _files.fetch_file("mnist", "t10k-labels-idx1-ubyte.gz")
    assert _files.stamp_file().is_relative_to(tmp_path)
    stamps = json.loads(_files.stamp_file().read_text())
    spec = _files.dataset_entry("mnist")["files"]["t10k-labels-idx1-ubyte.gz"]
    assert stamps[str(path.resolve())][2] == spec["sha256"]


# ------------------------------------------------------------------ search order and errors


def test_unknown_dataset_name_lists_known_names():
    with pytest.raises(UnknownDatasetError) as info:
        datasets.load("mnsit")
    assert isinstance(info.value, ValueError) and isinstance(info.value, DatasetError)
    for name in ("boston_housing", "cifar10", "fashion_mnist", "grading", "mnist"):
        assert name in str(info.value)
    with pytest.raises(UnknownDatasetError, match="cifar10"):
        _files.fetch_file("cifar100", "x.npz")


def test_missing_file_offline_lists_every_searched_path(isolated, monkeypatch):
    env_a, env_b = isolated / "env_a", isolated / "env_b"
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", f"{env_a}{os.pathsep}{env_b}")
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data(data_dir=isolated / "data")
    error = info.value
    assert isinstance(error, FileNotFoundError) and isinstance(error, DatasetError)
    message = str(error)
    name = "train-images-idx3-ubyte.gz"
    assert name in message
    places = [isolated / "data", env_a, env_b, isolated / "kit", isolated / "keras_home" / "datasets"]
    searched = [p for place in places for p in (place / "mnist" / name, place / name)]
    positions = [message.index(f"  {path}\n") for path in searched]
    assert positions == sorted(positions), "places must be listed in search order"
    assert "AUTOGRADER_OFFLINE" in message and "AUTOGRADER_DATA_DIR" in message
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz" in message


def test_download_refused_is_reported(isolated, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_OFFLINE")
    url = "http://127.0.0.1:9/housing.data"
    entry = copy.deepcopy(_files.dataset_entry("boston_housing"))
    entry["files"]["housing.data"]["origins"] = [url]
    with _files.override_entry("boston_housing", entry), pytest.raises(DatasetNotFoundError) as info:
        boston_housing.load_data(data_dir=isolated / "data")
    message = str(info.value)
    assert "Download failed" in message and url in message and "refused" in message.lower()
    assert "AUTOGRADER_OFFLINE is set" not in message
    assert [p for p in (isolated / "keras_home").rglob("*") if p.is_file()] == []


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server over ``tmp_path/www``; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fake_housing_data(seed=0):
    rows = np.random.RandomState(seed).uniform(0, 100, (506, 14)).round(3)
    return "\n".join(" ".join(f"{v:.3f}" for v in row) for row in rows).encode() + b"\n"


def test_download_tries_origins_in_turn_and_verifies(isolated, monkeypatch, http_root):
    monkeypatch.delenv("AUTOGRADER_OFFLINE")
    root, base = http_root
    good = fake_housing_data()
    (root / "bad").mkdir()
    (root / "bad" / "housing.data").write_bytes(fake_housing_data(seed=1))
    (root / "good").mkdir()
    (root / "good" / "housing.data").write_bytes(good)
    origins = ["http://127.0.0.1:9/housing.data", f"{base}/bad/housing.data", f"{base}/good/housing.data"]
    entry = spec_entry("boston_housing", "housing.data", good, origins)
    with _files.override_entry("boston_housing", entry):
        (x_train, y_train), _ = boston_housing.load_data(data_dir=isolated / "data")
        target = isolated / "keras_home" / "datasets" / "boston_housing" / "housing.data"
        assert target.read_bytes() == good
        assert sorted(p.name for p in target.parent.iterdir()) == ["housing.data"]  # no temp files left
        table = np.loadtxt(io.BytesIO(good))
        assert x_train.shape == (404, 13) and set(y_train) <= set(table[:, 13])
        # Found in the Keras cache next time, with no server needed.
        shutil.rmtree(root)
        (x_again, _), _ = boston_housing.load_data(data_dir=isolated / "data")
        np.testing.assert_array_equal(x_again, x_train)


def test_download_with_wrong_checksum_is_rejected(isolated, monkeypatch, http_root):
    monkeypatch.delenv("AUTOGRADER_OFFLINE")
    root, base = http_root
    (root / "housing.data").write_bytes(fake_housing_data(seed=1))
    entry = spec_entry("boston_housing", "housing.data", fake_housing_data(), [f"{base}/housing.data"])
    with _files.override_entry("boston_housing", entry), pytest.raises(DatasetNotFoundError) as info:
        boston_housing.load_data()
    assert f"{base}/housing.data" in str(info.value) and "sha256" in str(info.value)
    assert list((isolated / "keras_home").iterdir()) == []  # no file, no empty datasets/boston_housing/


def test_failed_download_leaves_no_empty_folders_in_the_keras_cache(isolated, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_OFFLINE")
    monkeypatch.delenv("KERAS_HOME")  # the cache is ~/.keras/datasets, which does not exist yet
    entry = copy.deepcopy(_files.dataset_entry("mnist"))
    for spec in entry["files"].values():
        spec["origins"] = ["http://127.0.0.1:9/refused.gz"]
    with _files.override_entry("mnist", entry), pytest.raises(DatasetNotFoundError, match="refused"):
        mnist.load_data()
    assert list((isolated / "home").iterdir()) == []  # no ~/.keras/datasets/mnist/ left behind


@pytest.mark.datasets("boston_housing")
def test_corrupt_real_file_flipped_byte(isolated):
    data = bytearray(shared_file("boston_housing", "housing.data").read_bytes())
    data[1000] ^= 0x01
    path = isolated / "data" / "boston_housing" / "housing.data"
    path.parent.mkdir()
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetCorruptError) as info:
        boston_housing.load_data(data_dir=isolated / "data")
    message = str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DatasetError)
    assert str(path) in message
    assert _files.dataset_entry("boston_housing")["files"]["housing.data"]["sha256"] in message
    assert sha256(bytes(data)) in message
    assert "Delete" in message and "archive.ics.uci.edu" in message


def test_corrupt_junk_file(isolated):
    (isolated / "data" / "housing.data").write_bytes(b"not the housing data\n")
    with pytest.raises(DatasetCorruptError, match="expected sha256"):
        boston_housing.load_data(data_dir=isolated / "data")


def write_npz(path, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_grading_stand_in_with_wrong_checksum_is_corrupt(isolated):
    path = isolated / "data" / "grading.npz"
    data = write_npz(path, x=np.zeros((4, 3), "float32"), y=np.zeros((4, 1), "float32"))
    with pytest.raises(DatasetCorruptError) as info:
        grading.load_data(data_dir=isolated / "data")
    assert sha256(data) in str(info.value) and str(path) in str(info.value)


def test_grading_stand_in_contents_are_checked(isolated):
    x, y = np.arange(12, dtype="float32").reshape(4, 3), np.ones((4, 1), "float32")
    data = write_npz(isolated / "data" / "grading.npz", x=x, y=y)
    with _files.override_entry("grading", spec_entry("grading", "grading.npz", data)):
        got_x, got_y = grading.load_data(data_dir=isolated / "data")
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)

    data = write_npz(isolated / "data" / "grading.npz", x=x)  # no y
    with _files.override_entry("grading", spec_entry("grading", "grading.npz", data)):
        with pytest.raises(DatasetCorruptError, match="expected arrays"):
            grading.load_data(data_dir=isolated / "data")


def test_first_hit_wins_and_a_corrupt_hit_is_not_skipped(isolated, monkeypatch):
    good = write_npz(isolated / "data" / "grading.npz", x=np.zeros((2, 3)), y=np.zeros((2, 1)))
    env_dir = isolated / "env"
    env_dir.mkdir()
    (env_dir / "grading.npz").write_bytes(b"junk")
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(env_dir))
    with _files.override_entry("grading", spec_entry("grading", "grading.npz", good)):
        assert grading.load_data(data_dir=isolated / "data")[0].shape == (2, 3)
        with pytest.raises(DatasetCorruptError, match="env"):
            grading.load_data()  # the junk in AUTOGRADER_DATA_DIR is found first
        os.remove(env_dir / "grading.npz")
        with pytest.raises(DatasetNotFoundError):
            grading.load_data()
        (isolated / "kit" / "grading.npz").write_bytes(good)
        assert grading.load_data()[0].shape == (2, 3)  # now from the kit folder


def test_changed_file_is_verified_again(isolated):
    data = fake_housing_data()
    path = isolated / "data" / "housing.data"
    path.write_bytes(data)
    entry = spec_entry("boston_housing", "housing.data", data)
    with _files.override_entry("boston_housing", entry):
        assert _files.fetch_file("boston_housing", "housing.data", isolated / "data") == path
        stamps = json.loads(_files.stamp_file().read_text())
        assert stamps[str(path.resolve())][2] == entry["files"]["housing.data"]["sha256"]
        path.write_bytes(data.replace(b"1", b"2", 1))  # same size, new content
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        with pytest.raises(DatasetCorruptError):
            _files.fetch_file("boston_housing", "housing.data", isolated / "data")


# ------------------------------------------------------------------ MNIST idx parsing


def write_gz(path, raw):
    path.write_bytes(gzip.compress(raw))
    return path


@pytest.mark.parametrize(
    "raw, problem",
    [
        (struct.pack(">2I", 2051, 3) + bytes(3), "magic number is 2051"),
        (struct.pack(">2I", 2049, 4) + bytes(3), "dimensions are (4,)"),
        (struct.pack(">2I", 2049, 3) + bytes(2), "exactly 3 bytes"),
        (struct.pack(">2I", 2049, 3) + bytes(4), "exactly 3 bytes"),
        (b"\x00\x00", "idx header"),
    ],
    ids=["magic", "dims", "short", "long", "truncated-header"],
)
def test_idx_header_is_validated(tmp_path, raw, problem):
    path = write_gz(tmp_path / "labels.gz", raw)
    with pytest.raises(DatasetCorruptError, match=re.escape(problem)) as info:
        mnist._read_idx(path, mnist.LABELS_MAGIC, (3,))
    assert str(path) in str(info.value)


def test_idx_reader_reads_pixels_and_rejects_non_gzip(tmp_path):
    pixels = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    path = write_gz(tmp_path / "images.gz", struct.pack(">4I", 2051, 2, 2, 3) + pixels.tobytes())
    np.testing.assert_array_equal(mnist._read_idx(path, mnist.IMAGES_MAGIC, (2, 2, 3)), pixels)
    (tmp_path / "plain").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetCorruptError, match="gzip"):
        mnist._read_idx(tmp_path / "plain", mnist.IMAGES_MAGIC, (2, 2, 3))


# ------------------------------------------------------------------ CIFAR-10 formats


def fake_cifar_images(n, seed):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (n, 32, 32, 3)).astype(np.uint8), rng.randint(0, 10, n).astype(np.uint8)


def fake_tarball(path, train, test):
    """Write a tar.gz laid out like cifar-10-python.tar.gz; return its bytes."""
    x, y = train
    batches = {f"data_batch_{i + 1}": (x[2 * i : 2 * i + 2], y[2 * i : 2 * i + 2]) for i in range(5)}
    batches["test_batch"] = test
    members = {}
    for name, (bx, by) in batches.items():
        rows = bx.transpose(0, 3, 1, 2).reshape(len(bx), 3072)  # channel planes, row-major
        record = {b"batch_label": name.encode(), b"labels": by.tolist(), b"data": rows,
                  b"filenames": [b"img%d.png" % i for i in range(len(bx))]}
        members[name] = pickle.dumps(record, protocol=2)
    members["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    members["readme.html"] = b"<html></html>"
    with tarfile.open(path, "w:gz") as tar:
        for name in ["data_batch_4", "readme.html", "test_batch", "data_batch_3",
                     "batches.meta", "data_batch_2", "data_batch_5", "data_batch_1"]:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(members[name])
            tar.addfile(info, io.BytesIO(members[name]))
    return path.read_bytes()


@pytest.fixture
def fake_cifar(isolated):
    """Fake CIFAR-10 files: a tarball and an npz pair with different images."""
    tar_train, tar_test = fake_cifar_images(10, seed=1), fake_cifar_images(3, seed=2)
    npz_train, npz_test = fake_cifar_images(4, seed=3), fake_cifar_images(2, seed=4)
    build = isolated / "build"
    build.mkdir()
    files = {
        "cifar-10-python.tar.gz": fake_tarball(build / "cifar-10-python.tar.gz", tar_train, tar_test),
        "cifar10_train.npz": write_npz(build / "cifar10_train.npz", x=npz_train[0], y=npz_train[1]),
        "cifar10_test.npz": write_npz(build / "cifar10_test.npz", x=npz_test[0], y=npz_test[1]),
    }
    entry = copy.deepcopy(_files.dataset_entry("cifar10"))
    for name, data in files.items():
        entry["files"][name].update(sha256=sha256(data), size=len(data))
    with _files.override_entry("cifar10", entry):
        yield {"build": build, "tar": (tar_train, tar_test), "npz": (npz_train, npz_test)}


def assert_cifar_equal(loaded, expected):
    (x_train, y_train), (x_test, y_test) = loaded
    (ex_train, ey_train), (ex_test, ey_test) = expected
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train.shape == (len(ey_train), 1) and y_test.shape == (len(ey_test), 1)
    np.testing.assert_array_equal(x_train, ex_train)
    np.testing.assert_array_equal(y_train[:, 0], ey_train)
    np.testing.assert_array_equal(x_test, ex_test)
    np.testing.assert_array_equal(y_test[:, 0], ey_test)


def place(fake, names, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(fake["build"] / name, folder / name)


NPZ_PAIR = ["cifar10_train.npz", "cifar10_test.npz"]


def test_cifar10_reads_the_canonical_tarball(isolated, fake_cifar):
    place(fake_cifar, ["cifar-10-python.tar.gz"], isolated / "data" / "cifar10")
    assert_cifar_equal(cifar10.load_data(data_dir=isolated / "data"), fake_cifar["tar"])


def test_cifar10_reads_the_tarball_under_its_keras_cache_name(isolated, fake_cifar):
    cache = isolated / "keras_home" / "datasets"
    place(fake_cifar, ["cifar-10-python.tar.gz"], cache)
    os.rename(cache / "cifar-10-python.tar.gz", cache / "cifar-10-batches-py-target_archive")
    assert_cifar_equal(cifar10.load_data(), fake_cifar["tar"])


def test_cifar10_prefers_the_npz_pair_within_a_place(isolated, fake_cifar):
    place(fake_cifar, NPZ_PAIR + ["cifar-10-python.tar.gz"], isolated / "data")
    assert_cifar_equal(cifar10.load_data(data_dir=isolated / "data"), fake_cifar["npz"])


def test_cifar10_earlier_place_wins_over_format(isolated, fake_cifar, monkeypatch):
    place(fake_cifar, ["cifar-10-python.tar.gz"], isolated / "data")
    place(fake_cifar, NPZ_PAIR, isolated / "env")
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(isolated / "env"))
    assert_cifar_equal(cifar10.load_data(data_dir=isolated / "data"), fake_cifar["tar"])
    assert_cifar_equal(cifar10.load_data(), fake_cifar["npz"])


def test_cifar10_half_an_npz_pair_is_not_enough(isolated, fake_cifar, monkeypatch):
    place(fake_cifar, ["cifar10_train.npz"], isolated / "data")
    with pytest.raises(DatasetNotFoundError) as info:
        cifar10.load_data(data_dir=isolated / "data")
    message = str(info.value)
    assert "cifar10_train.npz + cifar10_test.npz or cifar-10-python.tar.gz" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    place(fake_cifar, ["cifar-10-python.tar.gz"], isolated / "kit")
    assert_cifar_equal(cifar10.load_data(data_dir=isolated / "data"), fake_cifar["tar"])


def test_cifar10_tarball_with_wrong_checksum_is_not_unpickled(isolated, fake_cifar, monkeypatch):
    place(fake_cifar, ["cifar-10-python.tar.gz"], isolated / "data")
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled an unverified file"))
    with _files.override_entry("cifar10", _files.manifest()["cifar10"]):  # the real checksums
        with pytest.raises(DatasetCorruptError, match="6d958be0"):
            cifar10.load_data(data_dir=isolated / "data")
