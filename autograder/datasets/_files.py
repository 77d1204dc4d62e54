"""Finding, verifying and downloading the data files behind the loaders.

Every loader asks this module for its files by dataset name and file name.
The facts about each file (checksum, size, download origins) live in the
manifest, ``datasets/manifest.json``, which sits in the *kit data directory*:
``<repository>/datasets`` in a source checkout, or the package
``autograder.bundled_data`` in an installed wheel.

A file is looked for in these places, and the first hit wins:

1. the ``data_dir`` argument of the loader;
2. each directory in the environment variable ``AUTOGRADER_DATA_DIR``
   (several may be given, separated by ``os.pathsep``);
3. the kit data directory;
4. the Keras cache, ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``;
5. a download from each origin in turn into ``<Keras cache>/<subdir>/``,
   skipped when ``AUTOGRADER_OFFLINE=1``.

In each place both ``<place>/<subdir>/<file>`` and ``<place>/<file>`` are
tried. A place may also hold a *served description*,
``<place>/<subdir>/served.json``, written by a grader that serves a kernel
the training data without a private slice (see
:mod:`autograder.datasets.served`): the files it names are reduced copies
with fewer training rows, looked for beside it only and verified against the
sha256 it records instead of the manifest's. A file's sha256 is checked the
first time it is used; files already
checked are remembered by (path, size, mtime) in memory and in
``$XDG_CACHE_HOME/autograder/verified.json`` (default ``~/.cache``), so that
large files are not hashed on every call and data directories can stay
read-only.
"""

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import NamedTuple

try:
    import fcntl
except ImportError:  # Windows: students' machines, where one process verifies at a time
    fcntl = None

MANIFEST_NAME = "manifest.json"
SERVED_NAME = "served.json"
SERVED_FORMAT_VERSION = 1
DATA_DIR_ENV = "AUTOGRADER_DATA_DIR"
OFFLINE_ENV = "AUTOGRADER_OFFLINE"
DOWNLOAD_TIMEOUT = 30  # seconds, for connecting and for each read


class DatasetError(Exception):
    """Base class of every error raised by the dataset loaders."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data file is in none of the searched places and could not be downloaded."""


class DatasetCorruptError(DatasetError, ValueError):
    """A data file exists but does not have the expected content."""


class UnknownDatasetError(DatasetError, ValueError):
    """A dataset name that the kit does not know."""


# ---------------------------------------------------------------- manifest

_manifest = None
_entry_overrides = {}


def kit_data_dir():
    """Return the folder holding ``manifest.json`` (and ``grading.npz``)."""
    package_dir = Path(__file__).resolve().parents[1]  # .../autograder
    bundled = package_dir / "bundled_data"  # only exists in an installed wheel
    if (bundled / MANIFEST_NAME).is_file():
        return bundled
    return package_dir.parent / "datasets"


def manifest():
    """Return the ``datasets`` mapping of the manifest, read once per process."""
    global _manifest
    if _manifest is None:
        path = kit_data_dir() / MANIFEST_NAME
        try:
            with open(path, encoding="utf-8") as f:
                _manifest = json.load(f)["datasets"]
        except FileNotFoundError:
            raise DatasetNotFoundError(
                f"The dataset manifest {path} is missing; the kit is not "
                "installed correctly."
            ) from None
    return _manifest


def known_datasets():
    return sorted(manifest())


def dataset_entry(name):
    """Return the manifest entry of dataset ``name``."""
    if name in _entry_overrides:
        return _entry_overrides[name]
    entries = manifest()
    if name not in entries:
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(known_datasets())}."
        )
    return entries[name]


@contextlib.contextmanager
def override_entry(name, entry):
    """Testing seam: use ``entry`` as the manifest entry of ``name`` inside the block.

    Tests use it to load small stand-in files (whose checksums they put in
    ``entry``) through the real loaders. Not for use outside tests.
    """
    previous = _entry_overrides.get(name)
    _entry_overrides[name] = entry
    try:
        yield
    finally:
        if previous is None:
            del _entry_overrides[name]
        else:
            _entry_overrides[name] = previous


# ---------------------------------------------------------------- places


def keras_cache_dir():
    """Return ``$KERAS_HOME/datasets``, or ``~/.keras/datasets``."""
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home).expanduser() if keras_home else Path.home() / ".keras"
    return base / "datasets"


def search_dirs(data_dir=None):
    """Return the places searched, in order (steps 1 to 4 of the module docstring)."""
    dirs = [] if data_dir is None else [Path(data_dir)]
    dirs += [Path(d) for d in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep) if d]
    dirs += [kit_data_dir(), keras_cache_dir()]
    unique = []
    for d in dirs:
        d = Path(os.path.abspath(d.expanduser()))
        if d not in unique:
            unique.append(d)
    return unique


def _candidates(place, entry, filename):
    """Paths where ``filename`` may sit in ``place``, in the order they are tried."""
    names = [filename] + entry["files"][filename].get("aliases", [])
    paths = []
    for name in names:
        for path in (place / entry["subdir"] / name, place / name):
            if path not in paths:
                paths.append(path)
    return paths


def offline():
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


# ---------------------------------------------------------------- verification

_verified = {}  # resolved path -> [size, mtime_ns, sha256]


def stamp_file():
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "autograder" / "verified.json"


def _read_stamps():
    try:
        with open(stamp_file(), encoding="utf-8") as f:
            stamps = json.load(f)
        return stamps if isinstance(stamps, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_stamp(key, stamp):
    """Record a verified file in the stamp file; a read-only cache is not an error.

    Graders verify files in many processes at once: the read, the update and
    the replacement happen under an exclusive lock, so no process drops
    another's entry."""
    path = stamp_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(path.name + ".lock"), "a")
    except OSError:
        return
    with lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        stamps = {k: v for k, v in _read_stamps().items() if os.path.exists(k)}
        stamps[key] = stamp
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".verified.", suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(stamps, f, indent=1)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def sha256sum(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _corrupt_message(path, spec, actual_sha, actual_size):
    origins = spec.get("origins") or []
    refetch = (
        "fetch it again from " + " or ".join(origins)
        if origins
        else "restore it from the copy it came from"
    )
    size_note = ""
    if spec.get("size") is not None and spec["size"] != actual_size:
        size_note = f"\n  expected size {spec['size']} bytes, found {actual_size} bytes"
    return (
        f"Data file {path} is corrupt: its checksum is wrong.\n"
        f"  expected sha256 {spec['sha256']}\n"
        f"  actual sha256   {actual_sha}{size_note}\n"
        f"Delete the file and {refetch}."
    )


def verify(path, spec):
    """Check ``path`` against ``spec["sha256"]``, hashing it only when not yet known."""
    path = Path(path).resolve()
    st = path.stat()
    key = str(path)
    stamp = [st.st_size, st.st_mtime_ns, spec["sha256"]]
    if _verified.get(key) == stamp:
        return
    if _read_stamps().get(key) == stamp:
        _verified[key] = stamp
        return
    actual = sha256sum(path)
    if actual != spec["sha256"]:
        raise DatasetCorruptError(_corrupt_message(path, spec, actual, st.st_size))
    _verified[key] = stamp
    _write_stamp(key, stamp)


# ---------------------------------------------------------------- download


def _download(url, target, spec):
    """Download ``url`` to ``target`` via a temporary file; keep it only if
    verified. A failed download leaves nothing behind: neither the temporary
    file nor the folders made for it."""
    made = [d for d in (target.parent, *target.parent.parents) if not d.exists()]  # deepest first
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        print(f"Downloading {url} to {target}", file=sys.stderr)
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
            url, timeout=DOWNLOAD_TIMEOUT
        ) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        size = os.path.getsize(tmp)
        if digest.hexdigest() != spec["sha256"]:
            raise DatasetCorruptError(
                f"downloaded data has sha256 {digest.hexdigest()} ({size} bytes), "
                f"expected {spec['sha256']}"
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        for folder in made:
            with contextlib.suppress(OSError):  # not empty: another download filled it meanwhile
                folder.rmdir()
        raise
    st = target.stat()
    stamp = [st.st_size, st.st_mtime_ns, spec["sha256"]]
    _verified[str(target.resolve())] = stamp
    _write_stamp(str(target.resolve()), stamp)


def _try_download(entry, group, failures):
    """Download every file of ``group``; return their paths, or None after recording why not."""
    paths = {}
    for filename in group:
        spec = entry["files"][filename]
        target = keras_cache_dir() / entry["subdir"] / filename
        for url in spec.get("origins", []):
            try:
                _download(url, target, spec)
            except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts, bad data
                failures.append(f"{url}: {err}")
            else:
                paths[filename] = target
                break
        else:
            return None
    return paths


# ---------------------------------------------------------------- search


class Found(NamedTuple):
    """A verified data file, and how many rows it holds when that differs from
    the canonical file (``rows`` of a reduced copy named in ``served.json``;
    ``None`` for a file the manifest describes)."""

    path: Path
    rows: int | None


def served_files(place, dataset):
    """The reduced files of ``dataset`` that ``<place>/<subdir>/served.json``
    describes (file name -> ``{"sha256", "size", "rows"}``); empty when the
    place holds no description of this dataset.

    A description must say which canonical files it was cut from (``sources``,
    file name -> sha256), and they must be files of this kit's manifest: a
    description left over from other data is an error, not a silent mix.
    """
    entry = dataset_entry(dataset)
    path = Path(place) / entry["subdir"] / SERVED_NAME
    if not path.is_file():
        return {}

    def corrupt(problem):
        return DatasetCorruptError(
            f"Served description {path} is unusable: {problem}. It is written by the "
            "grader (autograder.datasets.served.build_view); build the data view again."
        )

    try:
        with open(path, encoding="utf-8") as f:
            description = json.load(f)
    except (OSError, ValueError) as err:
        raise corrupt(f"it is not readable JSON ({err})") from err
    if not isinstance(description, dict) or description.get("dataset") != dataset:
        return {}
    if description.get("format_version") != SERVED_FORMAT_VERSION:
        raise corrupt(f"format_version {description.get('format_version')!r}, "
                      f"expected {SERVED_FORMAT_VERSION}")
    sources, files = description.get("sources"), description.get("files")
    if not isinstance(sources, dict) or not isinstance(files, dict) or not files:
        raise corrupt("it lacks its 'sources' or 'files'")
    known = {spec["sha256"] for spec in entry["files"].values()}
    stale = sorted(name for name, sha in sources.items() if sha not in known)
    if stale:
        raise corrupt(f"it was cut from {', '.join(stale)} with checksums the manifest "
                      "does not list")
    for name, spec in files.items():
        ok = name in entry["files"] and isinstance(spec, dict)
        ok = ok and isinstance(spec.get("sha256"), str) and isinstance(spec.get("rows"), int)
        if not ok or spec["rows"] < 1:
            raise corrupt(f"its entry for {name!r} needs a file of the dataset, a sha256 "
                          "and a positive row count")
    return files


def locate(dataset, choices, data_dir=None):
    """Find, verify (and if needed download) one complete group of files.

    ``choices`` is a list of tuples of file names, each tuple a complete set
    that a loader can read. Places are searched in order; within a place the
    groups are tried in the order given. A file named in the place's
    ``served.json`` is taken from beside it, or the group is not complete
    there. Returns ``{filename: Found}`` for the group found; raises
    ``DatasetNotFoundError`` or ``DatasetCorruptError``.
    """
    entry = dataset_entry(dataset)
    places = search_dirs(data_dir)
    for place in places:
        served = served_files(place, dataset)
        for group in choices:
            found = {}
            for filename in group:
                if filename in served:
                    paths = [place / entry["subdir"] / filename]
                else:
                    paths = _candidates(place, entry, filename)
                hits = [p for p in paths if p.is_file()]
                if not hits:
                    break
                found[filename] = hits[0]
            else:
                located = {}
                for filename, path in found.items():
                    spec = served.get(filename)
                    verify(path, spec or entry["files"][filename])
                    located[filename] = Found(path, spec["rows"] if spec else None)
                return located

    failures = []
    if not offline():
        for group in choices:
            if all(entry["files"][f].get("origins") for f in group):
                paths = _try_download(entry, group, failures)
                if paths is not None:
                    return {name: Found(path, None) for name, path in paths.items()}
    raise DatasetNotFoundError(_not_found_message(dataset, entry, choices, places, failures))


def fetch_first(dataset, choices, data_dir=None):
    """The paths of the group :func:`locate` finds (``{filename: Path}``)."""
    return {name: found.path for name, found in locate(dataset, choices, data_dir).items()}


def fetch_file(dataset, filename, data_dir=None):
    """Return the verified path of one file of ``dataset`` (see ``fetch_first``)."""
    return fetch_first(dataset, [(filename,)], data_dir)[filename]


def _not_found_message(dataset, entry, choices, places, failures):
    wanted = " or ".join(" + ".join(group) for group in choices)
    lines = [f"Dataset {dataset!r}: could not find {wanted}.", "Searched:"]
    for place in places:
        for group in choices:
            for filename in group:
                lines += [f"  {path}" for path in _candidates(place, entry, filename)]
    if offline():
        lines.append(f"Download skipped: {OFFLINE_ENV} is set.")
    elif failures:
        lines.append("Download failed:")
        lines += [f"  {failure}" for failure in failures]
    else:
        lines.append("Download not possible: these files have no download origin.")
    origins = [url for group in choices for f in group for url in entry["files"][f].get("origins", [])]
    if origins:
        lines.append("Get it from one of:")
        lines += [f"  {url}" for url in origins]
    subdir = f" (or its {entry['subdir']!r} subfolder)" if entry["subdir"] else ""
    lines.append(
        f"Put it in one of the directories above{subdir}, or set {DATA_DIR_ENV} "
        "to the directory that holds it."
    )
    return "\n".join(lines)
