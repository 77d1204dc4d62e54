"""Fashion-MNIST clothing images, a drop-in for ``keras.datasets.fashion_mnist``."""

from .mnist import _load_idx_dataset


def load_data(data_dir=None):
    """Load the Fashion-MNIST dataset of 28x28 grayscale images of 10 kinds of clothing.

    Classes: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal,
    6 shirt, 7 sneaker, 8 bag, 9 ankle boot.

    Reads the four official idx files (``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``), each verified against its sha256. Each file
    is looked for in ``data_dir``, then in the directories of
    ``$AUTOGRADER_DATA_DIR``, the kit's ``datasets/`` folder and the Keras cache
    (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``), both in a
    ``fashion-mnist/`` subfolder and directly; if it is in none of them it is
    downloaded into the Keras cache, unless ``AUTOGRADER_OFFLINE=1``.

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
        - ``y_train``: uint8, shape (60000,), class indices 0-9 (as many as
          ``x_train``).
        - ``x_test``: uint8, shape (10000, 28, 28).
        - ``y_test``: uint8, shape (10000,).

    Raises:
        DatasetNotFoundError: a file is missing and could not be downloaded.
        DatasetCorruptError: a file has the wrong checksum or is malformed.
    """
    return _load_idx_dataset("fashion_mnist", data_dir)
