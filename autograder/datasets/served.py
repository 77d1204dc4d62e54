"""The student's kernel's view of the data: exactly the files its assignment
loads, and nothing else of the grader's data directories.

At grading time the kernel's ``AUTOGRADER_DATA_DIR`` names a *view*: a
directory the grader fills with symbolic links, one per data file the
assignment's datasets need (``<view>/<subdir>/<file>``), each pointing at a
verified real file. Without a sandbox the links are followed as they are;
inside bubblewrap each link's target is bound read-only at the link's path
(see :mod:`autograder.engine.sandbox`), so the kernel can read those files
and no other file of the data directories.

Finding the files here, on the trusted side and before the kernel starts,
also means a grader whose data is missing stops with a clear error of its
own, instead of charging the student for a loader that failed in the kernel.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from . import _files

FILE_GROUPS = {
    # Either set is enough; the loader prefers the npz pair (see cifar10.load_data).
    "cifar10": [("cifar10_train.npz", "cifar10_test.npz"), ("cifar-10-python.tar.gz",)],
}
"""Datasets whose files come in alternative sets. Every other dataset needs
all the files its manifest entry lists."""


def dataset_files(dataset: str) -> dict[str, Path]:
    """The verified real files of ``dataset``, found as its loader finds them
    (file name -> path). Raises ``DatasetNotFoundError`` or
    ``DatasetCorruptError`` as the loaders do."""
    entry = _files.dataset_entry(dataset)
    groups = FILE_GROUPS.get(dataset, [tuple(entry["files"])])
    return _files.fetch_first(dataset, groups)


HOLDOUT_SEED_ENV = "AUTOGRADER_HOLDOUT_SEED"
"""Set by the grader for the hidden suite's process only: which private slice
of the training data the kernel was not served."""


def course_holdout_seed(course_dir: Path) -> int | None:
    """The course's secret seed that picks the private training slice
    (``None``: nothing is held out). Not built yet."""
    return None


def build_view(datasets: Iterable[str], view: Path, *,
               holdout_seed: int | None = None) -> dict[Path, Path]:
    """Fill the empty directory ``view`` with a link per data file of
    ``datasets`` and return them (link -> real file)."""
    links: dict[Path, Path] = {}
    for dataset in datasets:
        subdir = _files.dataset_entry(dataset).get("subdir") or ""
        for filename, real in dataset_files(dataset).items():
            link = view / subdir / filename
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(Path(real).resolve(), link)
            links[link] = Path(real).resolve()
    return links
