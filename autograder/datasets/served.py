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

**The private slice.** Given a course's secret holdout seed, the view serves
the training images of MNIST, Fashion-MNIST and CIFAR-10 without a private
slice of :data:`HELD_OUT` rows, chosen by the seed. The reduced training
files are written once into a grader-side cache (:func:`cache_dir`) and
linked from the view together with a ``served.json`` that names each reduced
file with its sha256 and row count; the loaders verify them against it (see
:func:`autograder.datasets._files.served_files`). The hidden suite, which
gets the seed in :data:`HOLDOUT_SEED_ENV`, measures the model on
:func:`private_slice`: a model that does clearly better on the official test
set than on images it was never served has seen the test set.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import secrets
import shutil
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from . import _files

FILE_GROUPS = {
    # Either set is enough; the loader prefers the npz pair (see cifar10.load_data).
    "cifar10": [("cifar10_train.npz", "cifar10_test.npz"), ("cifar-10-python.tar.gz",)],
}
"""Datasets whose files come in alternative sets. Every other dataset needs
all the files its manifest entry lists."""

TRAIN_ROWS = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
"""Training rows of the canonical files of the datasets a slice is held out of."""

HELD_OUT = {"mnist": 5_000, "fashion_mnist": 5_000, "cifar10": 5_000}
"""Training rows kept from the kernel when grading with a holdout seed. For
CIFAR-10 the reference still clears its 0.70 target on the 40,000 images
left after its own validation split (docs/thresholds.md). Boston housing and
the grading data are not held out: they are too small to spare rows."""

HOLDOUT_SEED_ENV = "AUTOGRADER_HOLDOUT_SEED"
"""Set by the grader for the hidden suite's process only: which private slice
of the training data the kernel was not served. An instructor may also set
it to choose the course's seed (see :func:`course_holdout_seed`)."""

SEED_FILE = Path(".autograder") / "holdout_seed"
"""Where a course keeps its secret seed, relative to the course directory
(ignored by git; the sandbox hides the course directory from the kernel)."""

_FORMAT = _files.SERVED_FORMAT_VERSION


def dataset_files(dataset: str) -> dict[str, Path]:
    """The verified real files of ``dataset``, found as its loader finds them
    (file name -> path). Raises ``DatasetNotFoundError`` or
    ``DatasetCorruptError`` as the loaders do."""
    entry = _files.dataset_entry(dataset)
    groups = FILE_GROUPS.get(dataset, [tuple(entry["files"])])
    return _files.fetch_first(dataset, groups)


# ---------------------------------------------------------------- the seed


def _parse_seed(text: str, where: str) -> int:
    try:
        seed = int(text.strip())
    except ValueError:
        seed = -1
    if seed < 0:
        raise ValueError(f"The holdout seed in {where} must be a whole number >= 0, got {text.strip()!r}.")
    return seed


def holdout_seed_from_env() -> int | None:
    """The seed in :data:`HOLDOUT_SEED_ENV`, or ``None`` when it is not set
    (an empty value counts as not set)."""
    value = os.environ.get(HOLDOUT_SEED_ENV, "")
    return _parse_seed(value, HOLDOUT_SEED_ENV) if value.strip() else None


def course_holdout_seed(course_dir: Path) -> int | None:
    """The course's secret seed that picks the private training slice.

    :data:`HOLDOUT_SEED_ENV` wins when it is set. Otherwise the seed is read
    from ``<course_dir>/.autograder/holdout_seed``, which is created with a
    random 63-bit seed the first time it is needed and then kept, so every
    submission of the course is graded against the same slice. Creation is
    atomic: graders running in parallel all end up with the first seed
    written. Raises ``ValueError`` for a seed that is not a whole number >= 0.
    """
    from_env = holdout_seed_from_env()
    if from_env is not None:
        return from_env
    path = Path(course_dir) / SEED_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".holdout_seed.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f"{secrets.randbits(63)}\n")
            with contextlib.suppress(FileExistsError):  # another grader was first: keep theirs
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return _parse_seed(path.read_text(encoding="utf-8"), str(path))


# ---------------------------------------------------------------- the slice


def holdout_indices(dataset: str, seed: int) -> np.ndarray:
    """The training rows of ``dataset`` in the private slice of ``seed``, sorted.

    Each row gets a keyed hash of its index (BLAKE2b keyed with the seed and
    the dataset's name) and the :data:`HELD_OUT` rows with the smallest hashes
    form the slice: the same rows on every machine and with every NumPy,
    and no way to tell them without the seed.
    """
    if dataset not in HELD_OUT:
        raise ValueError(f"No private slice is held out of {dataset!r}; "
                         f"only of {', '.join(sorted(HELD_OUT))}.")
    key = hashlib.sha256(f"autograder holdout\0{dataset}\0{seed}".encode()).digest()
    ranks = np.array([
        int.from_bytes(hashlib.blake2b(i.to_bytes(4, "big"), key=key, digest_size=8).digest(), "big")
        for i in range(TRAIN_ROWS[dataset])
    ], dtype=np.uint64)
    return np.sort(np.argsort(ranks, kind="stable")[:HELD_OUT[dataset]])


def served_rows(dataset: str, seed: int | None) -> np.ndarray:
    """Indices into the canonical training set of the rows the kernel is
    served, in their order: all of them without a seed, else all but the
    private slice of that seed."""
    rows = np.arange(TRAIN_ROWS[dataset])
    return rows if seed is None else np.setdiff1d(rows, holdout_indices(dataset, seed))


def served_train_rows(dataset: str, seed: int | None) -> int:
    """How many training rows the kernel is served: all of them without a
    seed or for a dataset nothing is held out of."""
    full = TRAIN_ROWS.get(dataset)
    if full is None:
        raise ValueError(f"Unknown training size of {dataset!r}.")
    return full if seed is None else full - HELD_OUT[dataset]


def _full_training_data(dataset: str):
    """``(x_train, y_train), (x_test, y_test)`` from the canonical files, checked whole."""
    from . import LOADERS

    (x_train, y_train), test = LOADERS[dataset].load_data()
    if len(x_train) != TRAIN_ROWS[dataset]:
        raise _files.DatasetCorruptError(
            f"Dataset {dataset!r}: the grader's loader returned {len(x_train)} training rows, "
            f"not all {TRAIN_ROWS[dataset]}. The trusted side must read the canonical files, not "
            "a kernel's data view: check AUTOGRADER_DATA_DIR."
        )
    return (x_train, y_train), test


def private_slice(dataset: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out training rows ``(x, y)`` as the loader returns them
    (same dtypes and per-row shapes), in their original order. For the
    trusted side only: the hidden suite's process."""
    (x_train, y_train), _ = _full_training_data(dataset)
    rows = holdout_indices(dataset, seed)
    return x_train[rows], y_train[rows]


# ---------------------------------------------------------------- reduced copies


def cache_dir() -> Path:
    """Where reduced copies live: ``$XDG_CACHE_HOME/autograder/served``
    (default ``~/.cache``), beside the loaders' verified-file stamps and
    never inside a course's checkout."""
    return _files.stamp_file().parent / "served"


def _cache_key(dataset: str, seed: int, sources: dict[str, str]) -> str:
    material = json.dumps([_FORMAT, dataset, HELD_OUT[dataset], seed, sorted(sources.items())])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _write_idx_gz(path: Path, magic: int, array: np.ndarray) -> None:
    """An idx file of unsigned bytes, gzipped fast (it is a cache) and with a
    fixed timestamp, so that the same rows always give the same bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1,
                                                 mtime=0) as f:
        f.write(struct.pack(f">{1 + array.ndim}I", magic, *array.shape))
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _write_reduced(dataset: str, seed: int, directory: Path) -> dict[str, int]:
    """Write the files the view serves instead of the canonical ones into
    ``directory``; return their row counts (file name -> rows)."""
    (x_train, y_train), (x_test, y_test) = _full_training_data(dataset)
    keep = served_rows(dataset, seed)
    x_kept, y_kept = x_train[keep], y_train[keep]
    if dataset == "cifar10":
        # Served as the npz pair whatever the grader holds: the pair is what
        # the loader reads most quickly, and the test half comes along.
        np.savez(directory / "cifar10_train.npz", x=x_kept, y=y_kept.ravel())
        np.savez(directory / "cifar10_test.npz", x=x_test, y=y_test.ravel())
        return {"cifar10_train.npz": len(x_kept), "cifar10_test.npz": len(x_test)}
    from .mnist import IMAGES_MAGIC, LABELS_MAGIC

    _write_idx_gz(directory / "train-images-idx3-ubyte.gz", IMAGES_MAGIC, x_kept)
    _write_idx_gz(directory / "train-labels-idx1-ubyte.gz", LABELS_MAGIC, y_kept)
    return {"train-images-idx3-ubyte.gz": len(x_kept), "train-labels-idx1-ubyte.gz": len(y_kept)}


def _verified_copy(copy: Path, dataset: str) -> dict[str, Path] | None:
    """The files of a cached copy (including ``served.json``), or ``None``
    when it is incomplete or a file fails its checksum. A copy is laid out
    as a data directory, ``<copy>/<subdir>/<file>``, so the loaders' own
    reading of ``served.json`` checks it."""
    directory = copy / _files.dataset_entry(dataset)["subdir"]
    try:
        files = _files.served_files(copy, dataset)
        for name, spec in files.items():
            _files.verify(directory / name, spec)
    except (OSError, _files.DatasetError):
        return None
    if not files:
        return None
    return {name: directory / name for name in [*files, _files.SERVED_NAME]}


def reduced_copy(dataset: str, seed: int) -> dict[str, Path]:
    """The cached reduced files of ``dataset`` for ``seed`` and their
    ``served.json`` (file name -> path), written the first time.

    A copy is keyed by the dataset, a hash of the seed and the checksums of
    the canonical files it is cut from. It is built in a temporary directory
    and renamed into place, so a grader never sees half a copy; when several
    graders build it at once, the first rename wins. A copy that no longer
    verifies is built again.
    """
    entry = _files.dataset_entry(dataset)
    sources = {name: entry["files"][name]["sha256"] for name in dataset_files(dataset)}
    root = cache_dir()
    final = root / f"{dataset}-{_cache_key(dataset, seed, sources)}"
    if final.is_dir():
        copy = _verified_copy(final, dataset)
        if copy is not None:
            return copy
        shutil.rmtree(final, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}."))
    try:
        building.chmod(0o755)  # the sandbox binds these files for the kernel's user
        directory = building / entry["subdir"]
        directory.mkdir(parents=True, exist_ok=True)
        rows = _write_reduced(dataset, seed, directory)
        description = {
            "format_version": _FORMAT,
            "dataset": dataset,
            "held_out": HELD_OUT[dataset],
            "sources": sources,
            "files": {
                name: {"sha256": _files.sha256sum(directory / name),
                       "size": (directory / name).stat().st_size, "rows": count}
                for name, count in rows.items()
            },
        }
        (directory / _files.SERVED_NAME).write_text(json.dumps(description, indent=1) + "\n")
        for path in directory.iterdir():
            path.chmod(0o444)
        try:
            os.rename(building, final)
        except OSError:  # another grader renamed its copy into place first
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    copy = _verified_copy(final, dataset)
    if copy is None:
        raise _files.DatasetCorruptError(f"The reduced copy {final} does not verify; delete it.")
    return copy


# ---------------------------------------------------------------- the view


def build_view(datasets: Iterable[str], view: Path, *,
               holdout_seed: int | None = None) -> dict[Path, Path]:
    """Fill the empty directory ``view`` with a link per data file of
    ``datasets`` and return them (link -> real file).

    With ``holdout_seed``, the training files of the datasets in
    :data:`HELD_OUT` are linked to their reduced copies (:func:`reduced_copy`)
    and ``<view>/<subdir>/served.json`` to the description the loaders verify
    them with; the other files keep their canonical copies.
    """
    links: dict[Path, Path] = {}
    for dataset in datasets:
        subdir = _files.dataset_entry(dataset).get("subdir") or ""
        files = dataset_files(dataset)
        if holdout_seed is not None and dataset in HELD_OUT:
            reduced = reduced_copy(dataset, holdout_seed)
            groups = FILE_GROUPS.get(dataset, [])
            # A copy that is a whole set by itself (CIFAR-10's npz pair) replaces
            # what was found: a canonical archive beside it would serve every row.
            whole = any(set(group) <= set(reduced) for group in groups)
            files = reduced if whole else {**files, **reduced}
        for filename, real in files.items():
            link = view / subdir / filename
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(Path(real).resolve(), link)
            links[link] = Path(real).resolve()
    return links
