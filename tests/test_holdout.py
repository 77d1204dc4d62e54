"""Training on the test set is detected: the kernel is served the training
data without a private slice, and the hidden suites compare test accuracy
with accuracy on that slice (autograder.datasets.served,
autograder.checks.check_test_set_unseen)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from autograder import checks
from autograder.datasets import _files, mnist, served
from autograder.results import Status
from conftest import MNIST_MLP_MODEL, MNIST_PREPARE, by_name, make_submission

SEED = 20240611


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Reduced copies in a cache of this test's own, and no seed from outside."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(served.HOLDOUT_SEED_ENV, raising=False)


def row_hashes(x, y):
    """One digest per (image, label) row."""
    flat = np.ascontiguousarray(x).reshape(len(x), -1)
    return {hashlib.blake2b(row.tobytes() + bytes([int(label)]), digest_size=16).digest()
            for row, label in zip(flat, np.asarray(y).ravel())}


# ---------------------------------------------------------------- the seed


def test_course_seed_is_created_once_and_reused(tmp_path):
    first = served.course_holdout_seed(tmp_path)
    seed_file = tmp_path / ".autograder" / "holdout_seed"
    assert seed_file.read_text().strip() == str(first)
    assert seed_file.stat().st_mode & 0o077 == 0, "the seed file is private to the grader"
    assert served.course_holdout_seed(tmp_path) == first
    assert [p.name for p in seed_file.parent.iterdir()] == ["holdout_seed"], "no temporary left"
    other = tmp_path / "other_course"
    assert served.course_holdout_seed(other) != first, "each course draws its own secret seed"


def test_seed_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(served.HOLDOUT_SEED_ENV, "7")
    assert served.course_holdout_seed(tmp_path) == 7
    assert not (tmp_path / ".autograder").exists()
    monkeypatch.setenv(served.HOLDOUT_SEED_ENV, "seven")
    with pytest.raises(ValueError, match="whole number"):
        served.course_holdout_seed(tmp_path)


def test_slice_depends_on_seed_and_dataset_only():
    a = served.holdout_indices("mnist", SEED)
    assert len(a) == len(np.unique(a)) == served.HELD_OUT["mnist"]
    assert a.min() >= 0 and a.max() < served.TRAIN_ROWS["mnist"]
    assert np.array_equal(a, served.holdout_indices("mnist", SEED))
    assert not np.array_equal(a, served.holdout_indices("mnist", SEED + 1))
    assert not np.array_equal(a, served.holdout_indices("fashion_mnist", SEED))
    with pytest.raises(ValueError, match="boston_housing"):
        served.holdout_indices("boston_housing", SEED)


def test_gap_statistic_separates_seen_from_unseen():
    assert abs(checks.accuracy_gap_z(0.981, 10_000, 0.979, 5_000)) < 1
    assert checks.accuracy_gap_z(0.999, 10_000, 0.96, 5_000) > 2 * checks.TEST_DATA_SEEN_Z
    assert checks.accuracy_gap_z(0.95, 10_000, 0.99, 5_000) < 0
    assert checks.accuracy_gap_z(1.0, 10_000, 1.0, 5_000) == 0


# ---------------------------------------------------------------- the view


@pytest.fixture
def mnist_view(tmp_path):
    view = tmp_path / "view"
    links = served.build_view(["mnist", "grading"], view, holdout_seed=SEED)
    return view, links


@pytest.mark.slow
@pytest.mark.datasets("mnist")
def test_view_serves_verified_files_without_the_private_slice(mnist_view):
    view, links = mnist_view
    assert all(link.is_symlink() and link.resolve() == real for link, real in links.items())
    description = json.loads((view / "mnist" / "served.json").read_text())
    reduced = description["files"]
    assert sorted(reduced) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    manifest = _files.dataset_entry("mnist")["files"]
    for link in links:
        if link.name in reduced:
            assert _files.sha256sum(link) == reduced[link.name]["sha256"]
            assert reduced[link.name]["rows"] == 55_000
        elif link.name != "served.json":  # test files and grading.npz stay canonical
            entry = manifest.get(link.name) or _files.dataset_entry("grading")["files"][link.name]
            assert _files.sha256sum(link) == entry["sha256"]
    assert str(SEED) not in json.dumps(description), "the description does not give the seed away"
    for link, real in links.items():
        if link.name in reduced or link.name == "served.json":
            assert real.is_relative_to(served.cache_dir()), "reduced copies live in the grader's cache"

    (x_train, y_train), (x_test, y_test) = mnist.load_data(data_dir=view)
    assert x_train.shape == (55_000, 28, 28) and y_train.shape == (55_000,)
    assert x_train.dtype == y_train.dtype == x_test.dtype == y_test.dtype == np.uint8
    assert x_test.shape == (10_000, 28, 28) and y_test.shape == (10_000,)

    x_private, y_private = served.private_slice("mnist", SEED)
    assert x_private.shape == (5_000, 28, 28) and x_private.dtype == y_private.dtype == np.uint8
    assert not row_hashes(x_train, y_train) & row_hashes(x_private, y_private)

    # The private rows are exactly the missing ones: served + private = the full set.
    (x_full, y_full), (x_full_test, _) = mnist.load_data()
    rows = served.holdout_indices("mnist", SEED)
    kept = np.setdiff1d(np.arange(60_000), rows)
    assert np.array_equal(x_train, x_full[kept]) and np.array_equal(y_train, y_full[kept])
    assert np.array_equal(x_private, x_full[rows]) and np.array_equal(y_private, y_full[rows])
    assert np.array_equal(x_test, x_full_test)


@pytest.mark.slow
@pytest.mark.datasets("mnist")
def test_view_is_built_from_the_cache_the_second_time(mnist_view, tmp_path):
    _, links = mnist_view
    first = {real: real.stat().st_mtime_ns for real in links.values()}
    again = served.build_view(["mnist", "grading"], tmp_path / "again", holdout_seed=SEED)
    assert {real: real.stat().st_mtime_ns for real in again.values()} == first
    other = served.build_view(["mnist"], tmp_path / "other", holdout_seed=SEED + 1)
    assert other[tmp_path / "other" / "mnist" / "served.json"] not in first, "another seed, another copy"


@pytest.mark.slow
@pytest.mark.datasets("mnist")
def test_a_tampered_reduced_file_is_refused(mnist_view, tmp_path):
    view, links = mnist_view
    copy = tmp_path / "copy" / "mnist"
    copy.mkdir(parents=True)
    for link in (view / "mnist").iterdir():
        (copy / link.name).write_bytes(link.read_bytes())
    description = json.loads((copy / "served.json").read_text())
    description["files"]["train-labels-idx1-ubyte.gz"]["sha256"] = "0" * 64
    (copy / "served.json").write_text(json.dumps(description))
    with pytest.raises(_files.DatasetCorruptError, match="checksum is wrong"):
        mnist.load_data(data_dir=copy.parent)
    description["sources"] = {"train-images-idx3-ubyte.gz": "1" * 64}
    (copy / "served.json").write_text(json.dumps(description))
    with pytest.raises(_files.DatasetCorruptError, match="manifest does not list"):
        mnist.load_data(data_dir=copy.parent)


def test_private_slice_refuses_a_served_view(tmp_path, monkeypatch):
    """The trusted side must measure on the canonical files: a loader that
    finds a reduced copy first would index the wrong rows."""
    monkeypatch.setattr(mnist, "load_data", lambda: ((np.zeros((55_000, 28, 28), np.uint8),
                                                       np.zeros(55_000, np.uint8)), (None, None)))
    with pytest.raises(_files.DatasetCorruptError, match="not all 60000"):
        served.private_slice("mnist", SEED)


# ---------------------------------------------------------------- a cheater, graded


CHEATER_TRAIN = """
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_test_scaled, y_test, epochs=10, batch_size=128, verbose=0)
"""
REFERENCE_ANSWERS = {
    "prepare": MNIST_PREPARE,
    "build": MNIST_MLP_MODEL,
    "evaluate": "test_loss, test_accuracy = model.evaluate(x_test_scaled, y_test, verbose=0)",
}


@pytest.mark.slow
@pytest.mark.datasets("mnist")
def test_model_fitted_on_the_test_set_loses_the_accuracy_points(grade, tmp_path, monkeypatch):
    monkeypatch.setenv(served.HOLDOUT_SEED_ENV, str(SEED))
    notebook = make_submission(tmp_path / "mnist_mlp.ipynb", "mnist_mlp",
                               {**REFERENCE_ANSWERS, "train": CHEATER_TRAIN})
    result = grade(notebook, "mnist_mlp")
    checks_by_name = by_name(result)
    accuracy = checks_by_name["test_test_accuracy"]
    assert accuracy.status is Status.FAIL and accuracy.score == 0
    assert "seems to have seen the test data" in accuracy.output
    assert "must stay unseen until the final measurement" in accuracy.output
    assert result.metrics["test_accuracy"] > 0.99
    assert result.metrics["test_accuracy"] - result.metrics["private_slice_accuracy"] > 0.02
    passed = {name for name, check in checks_by_name.items() if check.status is Status.PASS}
    assert passed == {"test_input_and_output_shapes", "test_outputs_are_probabilities",
                      "test_parameter_budget"}
    # The history cross-check catches it too: the loss in `history` is the
    # loss on the test images it memorised, far below its loss on training images.
    assert result.score == 4
