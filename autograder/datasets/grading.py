"""The course's synthetic grading data, used by the ``linear_grading`` exercise."""

import zipfile

import numpy as np

from . import _files


def load_data(data_dir=None):
    """Load the grading dataset: points of 2000 students and their final grades.

    Reads ``grading.npz``, which ships with the kit (verified against its
    sha256). It is looked for in ``data_dir``, then in the directories of
    ``$AUTOGRADER_DATA_DIR``, the kit's ``datasets/`` folder and the Keras cache
    (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``). It has no download
    origin.

    Args:
        data_dir: optional directory searched before all the others.

    Returns:
        ``(x, y)``:

        - ``x``: float32, shape (2000, 3): points from the exercises (0-10),
          the project (0-10) and the exam (0-20), whole numbers.
        - ``y``: float32, shape (2000, 1): the final grade, a whole number 0-5.

    Raises:
        DatasetNotFoundError: the file is in none of the searched places.
        DatasetCorruptError: the file has the wrong checksum or is malformed.
    """
    path = _files.fetch_file("grading", "grading.npz", data_dir)
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
        well_formed = x.ndim == 2 and x.shape[1] == 3 and y.shape == (len(x), 1)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        well_formed = False
    if not well_formed:
        raise _files.DatasetCorruptError(
            f"Data file {path} is corrupt: expected arrays x of shape (N, 3) and "
            "y of shape (N, 1). Delete it and restore it from the kit."
        )
    return x, y
