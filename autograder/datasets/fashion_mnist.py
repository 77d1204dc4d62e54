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

    When a grader serves the data to a student's kernel, the two training files
    are reduced copies without its private slice of images
    (:mod:`autograder.datasets.served`; a ``served.json`` beside them pins
    their checksums and row counts), so only ``x_train`` and ``y_train`` are
    shorter. The test files are always whole.

    Args:
        data_dir: optional directory searched before all the others.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``, grey-scale clothing images
        and their class indices (the classes above):

        - ``x_train``: uint8, shape (60000, 28, 28), pixel values 0-255;
          55000 rows when served without the private slice of 5,000.
        - ``y_train``: uint8, shape (60000,): one class index per image.
        - ``x_test``: uint8, shape (10000, 28, 28); ``y_test``: uint8,
          shape (10000,).

    Raises:
        DatasetNotFoundError: a file is missing and could not be downloaded.
        DatasetCorruptError: a file has the wrong checksum or is malformed.
    """
    return _load_idx_dataset("fashion_mnist", data_dir)
