"""MNIST handwritten digits, a drop-in for ``keras.datasets.mnist``."""

import gzip
import struct
import zlib

import numpy as np

from . import _files

IMAGES_MAGIC = 2051  # idx3: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # idx1: unsigned bytes, 1 dimension


def load_data(data_dir=None):
    """Load the MNIST dataset of 28x28 grayscale images of the digits 0-9.

    Reads the four official idx files (``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``), each verified against its sha256. Each file
    is looked for in ``data_dir``, then in the directories of
    ``$AUTOGRADER_DATA_DIR``, the kit's ``datasets/`` folder and the Keras cache
    (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``), both in an ``mnist/``
    subfolder and directly; if it is in none of them it is downloaded into the
    Keras cache, unless ``AUTOGRADER_OFFLINE=1``.

    At grading time the training files may be reduced copies, named with their
    checksums and row counts in a ``served.json`` beside them: the grader keeps
    a private slice of the training images back (see
    :mod:`autograder.datasets.served`). Only the number of training rows
    differs then.

    Args:
        data_dir: optional directory searched before all the others.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``:

        - ``x_train``: uint8, shape (60000, 28, 28), pixel values 0-255
          (fewer rows from a reduced copy, e.g. 55000).
        - ``y_train``: uint8, shape (60000,), digits 0-9 (as many as
          ``x_train``).
        - ``x_test``: uint8, shape (10000, 28, 28).
        - ``y_test``: uint8, shape (10000,).

    Raises:
        DatasetNotFoundError: a file is missing and could not be downloaded.
        DatasetCorruptError: a file has the wrong checksum or is malformed.
    """
    return _load_idx_dataset("mnist", data_dir)


def _load_idx_dataset(dataset, data_dir):
    """Load the four idx files of ``dataset`` (shared with Fashion-MNIST)."""

    def read(filename, magic, shape):
        found = _files.locate(dataset, [(filename,)], data_dir)[filename]
        rows = shape[0] if found.rows is None else found.rows
        return _read_idx(found.path, magic, (rows, *shape[1:]))

    x_train = read("train-images-idx3-ubyte.gz", IMAGES_MAGIC, (60000, 28, 28))
    y_train = read("train-labels-idx1-ubyte.gz", LABELS_MAGIC, (60000,))
    if len(x_train) != len(y_train):
        raise _files.DatasetCorruptError(
            f"Dataset {dataset!r}: the training files hold {len(x_train)} images but "
            f"{len(y_train)} labels; they come from different copies. Fetch both again."
        )
    x_test = read("t10k-images-idx3-ubyte.gz", IMAGES_MAGIC, (10000, 28, 28))
    y_test = read("t10k-labels-idx1-ubyte.gz", LABELS_MAGIC, (10000,))
    return (x_train, y_train), (x_test, y_test)


def _read_idx(path, magic, shape):
    """Read a gzipped idx file of unsigned bytes, checking its header against
    ``magic`` and ``shape``; raise DatasetCorruptError naming ``path`` if wrong."""

    def corrupt(problem):
        return _files.DatasetCorruptError(
            f"Data file {path} is corrupt: {problem}. "
            "Delete it and fetch it again from its origin."
        )

    header_size = 4 * (1 + len(shape))
    try:
        with gzip.open(path, "rb") as f:
            header = f.read(header_size)
            if len(header) < header_size:
                raise corrupt(f"it ends inside the {header_size}-byte idx header")
            found_magic, *dims = struct.unpack(f">{1 + len(shape)}I", header)
            if found_magic != magic:
                raise corrupt(f"idx magic number is {found_magic}, expected {magic}")
            if tuple(dims) != shape:
                raise corrupt(f"idx dimensions are {tuple(dims)}, expected {shape}")
            data = np.empty(shape, dtype=np.uint8)
            count = f.readinto(data.reshape(-1))
            if count != data.size or f.read(1):
                raise corrupt(f"expected exactly {data.size} bytes of data after the header")
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise corrupt(f"it is not a valid gzip file ({err})") from err
    return data
