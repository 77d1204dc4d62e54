"""CIFAR-10 small colour images, a drop-in for ``keras.datasets.cifar10``."""

import pickle
import tarfile
import zipfile

import numpy as np

from . import _files

TARBALL = "cifar-10-python.tar.gz"
TRAIN_NPZ = "cifar10_train.npz"
TEST_NPZ = "cifar10_test.npz"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"


def load_data(data_dir=None):
    """Load the CIFAR-10 dataset of 32x32 colour images in 10 classes.

    Classes: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog,
    7 horse, 8 ship, 9 truck.

    Reads either the canonical archive ``cifar-10-python.tar.gz`` (its pickled
    batches are read straight from the archive, which is checksum-verified
    first; the names Keras gives it in its cache are accepted too) or the
    pair ``cifar10_train.npz`` + ``cifar10_test.npz`` (keys ``x`` uint8
    (N, 32, 32, 3) and ``y`` uint8 (N,)). The places searched, in order, are
    ``data_dir``, the directories of ``$AUTOGRADER_DATA_DIR``, the kit's
    ``datasets/`` folder and the Keras cache (``$KERAS_HOME/datasets`` or
    ``~/.keras/datasets``), each both in a ``cifar10/`` subfolder and directly;
    the first place holding either set wins, and within a place the npz pair
    is preferred. If none is found, the archive is downloaded into the Keras
    cache, unless ``AUTOGRADER_OFFLINE=1``.

    At grading time the pair may be reduced copies, named with their checksums
    and row counts in a ``served.json`` beside them: the grader keeps a private
    slice of the training images back (see :mod:`autograder.datasets.served`).
    Only the number of training rows differs then.

    Args:
        data_dir: optional directory searched before all the others.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``:

        - ``x_train``: uint8, shape (50000, 32, 32, 3), channels last, RGB
          (fewer rows from a reduced copy, e.g. 45000).
        - ``y_train``: uint8, shape (50000, 1), class indices 0-9 (as many
          as ``x_train``).
        - ``x_test``: uint8, shape (10000, 32, 32, 3).
        - ``y_test``: uint8, shape (10000, 1).

    Raises:
        DatasetNotFoundError: no complete set of files was found or downloaded.
        DatasetCorruptError: a file has the wrong checksum or is malformed.
    """
    found = _files.locate("cifar10", [(TRAIN_NPZ, TEST_NPZ), (TARBALL,)], data_dir)
    if TARBALL in found:
        return _read_tarball(found[TARBALL].path)
    return _read_npz(*found[TRAIN_NPZ]), _read_npz(*found[TEST_NPZ])


def _corrupt(path, problem):
    return _files.DatasetCorruptError(
        f"Data file {path} is corrupt: {problem}. Delete it and fetch it again."
    )


def _read_npz(path, rows=None):
    """Return ``(x, y)`` from one npz of the pair, ``y`` reshaped to (N, 1);
    ``rows``, when given, is the number of images the file must hold."""
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise _corrupt(path, f"cannot read arrays x and y ({err})") from err
    if x.dtype != np.uint8 or x.shape[1:] != (32, 32, 3) or y.shape != (len(x),):
        raise _corrupt(path, f"unexpected arrays x {x.dtype} {x.shape}, y {y.shape}")
    if rows is not None and len(x) != rows:
        raise _corrupt(path, f"it holds {len(x)} images, its description says {rows}")
    return x, y.astype(np.uint8).reshape(-1, 1)


def _read_tarball(path):
    """Read the pickled batches from the (already verified) canonical archive."""
    wanted = {f"{BATCH_DIR}/{name}" for name in TRAIN_BATCHES + [TEST_BATCH]}
    batches = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:  # one pass: the archive does not store batches in order
                if member.name in wanted and member.isfile():
                    with tar.extractfile(member) as f:
                        batch = pickle.load(f, encoding="bytes")
                    batches[member.name.split("/")[-1]] = _batch_arrays(path, member.name, batch)
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise _corrupt(path, f"cannot read the archive ({err})") from err
    missing = sorted(n for n in TRAIN_BATCHES + [TEST_BATCH] if n not in batches)
    if missing:
        raise _corrupt(path, f"the archive lacks {', '.join(missing)}")

    def join(names):
        x = np.concatenate([batches[n][0] for n in names])
        y = np.concatenate([batches[n][1] for n in names]).reshape(-1, 1)
        return x, y

    return join(TRAIN_BATCHES), join([TEST_BATCH])


def _batch_arrays(path, member, batch):
    """Turn one unpickled batch into ``(x, y)``; its rows are CHW, made HWC here."""
    if isinstance(batch, dict):
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    try:
        data = np.asarray(batch["data"])
        labels = np.asarray(batch["labels"])
        ok = data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072
        ok = ok and labels.shape == (len(data),)
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise _corrupt(path, f"{member} is not a CIFAR-10 batch")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, labels.astype(np.uint8)
