"""Boston housing prices, a drop-in for ``keras.datasets.boston_housing``.

Ethical caveat: feature 12, ``B``, encodes the proportion of Black residents
of a town and was built on an assumption of racial self-segregation. Use the
data to exercise regression code, not to draw conclusions.
"""

import numbers

import numpy as np

from . import _files

NUM_ROWS = 506
NUM_COLUMNS = 14  # 13 features, then MEDV


def load_data(data_dir=None, test_split=0.2, seed=113):
    """Load the Boston housing dataset: 13 features of 506 towns and their median house price.

    Gives the same arrays as Keras: the rows are shuffled with
    ``np.random.RandomState(seed)`` and the first ``int(506 * (1 - test_split))``
    become the training set.

    Reads the original UCI ``housing.data`` (verified against its sha256). It is
    looked for in ``data_dir``, then in the directories of
    ``$AUTOGRADER_DATA_DIR``, the kit's ``datasets/`` folder and the Keras cache
    (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``), both in a
    ``boston_housing/`` subfolder and directly; if it is in none of them it is
    downloaded into the Keras cache, unless ``AUTOGRADER_OFFLINE=1``.

    Args:
        data_dir: optional directory searched before all the others.
        test_split: fraction of the rows kept for the test set, strictly
            between 0 and 1.
        seed: random seed of the shuffle made before the split.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``, with the default split:

        - ``x_train``: float64, shape (404, 13): CRIM, ZN, INDUS, CHAS, NOX,
          RM, AGE, DIS, RAD, TAX, PTRATIO, B, LSTAT.
        - ``y_train``: float64, shape (404,): MEDV, the median value of
          owner-occupied homes in k$ (censored at 50.0).
        - ``x_test``: float64, shape (102, 13).
        - ``y_test``: float64, shape (102,).

    Raises:
        ValueError: ``test_split`` is not strictly between 0 and 1.
        DatasetNotFoundError: the file is missing and could not be downloaded.
        DatasetCorruptError: the file has the wrong checksum or is malformed.
    """
    if not isinstance(test_split, numbers.Real) or not 0 < test_split < 1:
        raise ValueError(
            f"test_split must be a number strictly between 0 and 1, got {test_split!r}."
        )
    path = _files.fetch_file("boston_housing", "housing.data", data_dir)
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
        well_formed = table.shape == (NUM_ROWS, NUM_COLUMNS)
    except ValueError:
        well_formed = False
    if not well_formed:
        raise _files.DatasetCorruptError(
            f"Data file {path} is corrupt: expected {NUM_ROWS} rows of "
            f"{NUM_COLUMNS} numbers. Delete it and fetch it again from its origin."
        )
    x, y = table[:, :13], table[:, 13]

    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    x, y = x[indices], y[indices]
    num_train = int(len(x) * (1 - test_split))
    return (x[:num_train], y[:num_train]), (x[num_train:], y[num_train:])
