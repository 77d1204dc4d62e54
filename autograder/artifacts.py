"""What the student's kernel exports for the hidden suite: the kinds of
artifact in one table, the export log, and reading the kernel's files back.

An assignment declares its artifacts in ``assignment.toml`` as
``variable = "kind"``. After the notebook, the kernel saves each variable as
``<variable><suffix>`` (:mod:`autograder.engine.kernel_export`) and writes
``export_log.json``; the trusted side copies those files out of the kernel's
reach (:mod:`autograder.engine.evaluate`) and loads them with the safe
loaders named here (:mod:`autograder.suite_plugin`). Everything in these
files is untrusted: the kernel can write anything there.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArtifactKind:
    """One kind of artifact: its file suffix and how each side handles it."""

    name: str
    suffix: str
    saved_by: str
    """How the kernel saves it."""
    loaded_by: str
    """How the trusted side reads it back."""


KINDS = {kind.name: kind for kind in (
    ArtifactKind("model", ".keras", "model.save(<name>.keras)",
                 "keras.saving.load_model(safe_mode=True, compile=False), after refusing Lambda "
                 "and custom layers named in its config.json"),
    ArtifactKind("history", ".history.json", "the History's .history dict (or the dict) as JSON",
                 "plain JSON, metric names to lists of floats (read_history validates it strictly)"),
    ArtifactKind("array", ".npy", "np.save(allow_pickle=False)", "np.load(allow_pickle=False)"),
)}
"""Every artifact kind, by name."""

MAX_ARTIFACT_BYTES = 1024**3
"""Largest artifact file the suite will read; larger ones count as not saved."""
MAX_ARTIFACTS_BYTES = 2 * 1024**3
"""Largest total of artifact files the suite will read."""
EXPORT_LOG = "export_log.json"
"""Beside the artifacts: per variable, whether it was saved and, if not, why."""
RUNTIME_LOG = "runtime.json"
"""Beside the artifacts: the Keras backend the kernel ran and its device (:class:`KernelRuntime`)."""


@dataclass(frozen=True)
class ExportEntry:
    """What happened to one declared variable: ``saved``, ``missing`` or
    ``invalid``, with a message for the student when it was not saved."""

    status: str
    message: str = ""

    def to_dict(self) -> dict:
        return {"status": self.status, **({"message": self.message} if self.message else {})}


def read_export_log(path: Path) -> dict[str, ExportEntry]:
    """The export log at ``path`` (empty when absent or not a log): the
    kernel wrote it, so anything unexpected in it is dropped."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(name): ExportEntry(str(entry.get("status", "")), str(entry.get("message", ""))[:2000])
            for name, entry in data.items() if isinstance(entry, dict)}


@dataclass(frozen=True)
class KernelRuntime:
    """What the kernel says it trained on: its Keras ``backend`` and its
    ``device``, ``gpu`` or ``cpu``; ``None`` where it did not say (Keras was
    never imported, or the file is missing or unreadable). The kernel could
    write anything here, so it only ever describes a grading; no score
    depends on it."""

    backend: str | None = None
    device: str | None = None


BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")
"""Keras backends a runtime record may name."""


def read_runtime(path: Path) -> KernelRuntime:
    """The kernel's runtime record at ``path``; fields that are absent or not
    one of the expected values are ``None``."""
    try:
        data = json.loads(read_plain_file(Path(path), 4096).decode("utf-8"))
    except (UnusableFile, UnicodeDecodeError, ValueError, RecursionError):
        return KernelRuntime()
    if not isinstance(data, dict):
        return KernelRuntime()
    backend, device = data.get("backend"), data.get("device")
    return KernelRuntime(backend if backend in BACKENDS else None,
                         device if device in ("gpu", "cpu") else None)


def export_log_json(log: dict[str, ExportEntry]) -> str:
    return json.dumps({name: entry.to_dict() for name, entry in log.items()})


def suffixes(artifacts: dict[str, str]) -> dict[str, str]:
    """Kind -> file suffix for the kinds of ``artifacts`` (variable -> kind),
    what the kernel-side exporter needs to name its files."""
    return {kind: KINDS[kind].suffix for kind in set(artifacts.values())}


def variable_of(filename: str) -> str | None:
    """The variable an artifact file holds (``model`` for ``model.keras``), if any."""
    for kind in KINDS.values():
        if filename.endswith(kind.suffix) and len(filename) > len(kind.suffix):
            return filename[: -len(kind.suffix)]
    return None


# ------------------------------------------------------------------ histories

MAX_HISTORY_BYTES = 4 * 2**20
"""A history file larger than this is not read."""
MAX_EPOCHS = 10_000
MAX_SERIES = 64
SERIES_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")


class UnusableFile(ValueError):
    """A feedback file that cannot be used; the message says why, in the
    student's terms, without quoting the file's content."""


def read_plain_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. Links, devices
    and pipes are refused without being followed or read."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        raise UnusableFile("it could not be opened as a plain file") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnusableFile("it is not a plain file")
        if info.st_size > limit:
            raise UnusableFile(f"it is larger than {limit // 2**20} MiB")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(2**20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnusableFile(f"it is larger than {limit // 2**20} MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_history(path: Path | str) -> dict[str, list[float]]:
    """A training history as ``{metric name: [value per epoch]}``, validated.

    Accepted: a JSON object of 1 to 64 entries, each a plain metric name
    (letters, digits, ``_ . -``) mapping to a list of 1 to 10,000 numbers.
    ``NaN`` and infinities are kept (a training run that diverged records
    them, and the report says so); anything else raises :class:`UnusableFile`.
    """
    raw = read_plain_file(Path(path), MAX_HISTORY_BYTES)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UnusableFile("it is not valid JSON") from None
    if not isinstance(data, dict) or not data:
        raise UnusableFile("it is not a set of metric names with one list of numbers each")
    if len(data) > MAX_SERIES:
        raise UnusableFile(f"it records more than {MAX_SERIES} metrics")
    history = {}
    for key, values in data.items():
        if not SERIES_NAME.match(key):
            raise UnusableFile("a metric name in it is not a plain name")
        if not isinstance(values, list) or not values:
            raise UnusableFile(f"`{key}` is not a list of values per epoch")
        if len(values) > MAX_EPOCHS:
            raise UnusableFile(f"`{key}` has more than {MAX_EPOCHS:,} epochs")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise UnusableFile(f"`{key}` holds something other than numbers")
        try:
            history[key] = [float(v) for v in values]
        except OverflowError:
            raise UnusableFile(f"`{key}` holds a number too large to draw") from None
    return history
