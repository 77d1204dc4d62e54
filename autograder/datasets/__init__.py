"""Offline drop-in replacements for the ``keras.datasets`` loaders the course uses.

Each module has a ``load_data(data_dir=None, ...)`` that returns the same
structure, shapes and dtypes as its Keras counterpart, reading verified local
copies of the canonical files (see ``datasets/README.md`` for where they are
looked for)::

    from autograder.datasets import mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data()

or, by name: ``autograder.datasets.load("mnist")``.
"""

from . import boston_housing, cifar10, fashion_mnist, grading, mnist
from ._files import (
    DatasetCorruptError,
    DatasetError,
    DatasetNotFoundError,
    UnknownDatasetError,
)

LOADERS = {
    "boston_housing": boston_housing,
    "cifar10": cifar10,
    "fashion_mnist": fashion_mnist,
    "grading": grading,
    "mnist": mnist,
}

__all__ = [
    "DatasetCorruptError",
    "DatasetError",
    "DatasetNotFoundError",
    "UnknownDatasetError",
    "boston_housing",
    "cifar10",
    "fashion_mnist",
    "grading",
    "load",
    "mnist",
]


def load(name, **kwargs):
    """Call ``load_data(**kwargs)`` of the dataset called ``name`` (e.g. ``"mnist"``).

    ``"fashion-mnist"`` is accepted as well as ``"fashion_mnist"``. Raises
    ``UnknownDatasetError`` (a ``ValueError``) listing the known names.
    """
    module = LOADERS.get(name.replace("-", "_") if isinstance(name, str) else name)
    if module is None:
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(sorted(LOADERS))}."
        )
    return module.load_data(**kwargs)
