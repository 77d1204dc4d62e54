"""Reading and writing where the student's kernel could write.

The kernel can write in its work directory, so anything found there may be a
symbolic link to a file the grader must not touch, a FIFO that blocks whoever
opens it, a huge or sparse file, or a module named like one the grader
imports. The trusted side therefore copies what it needs out of that
directory into a private one before reading it, and writes into it only
after removing whatever the kernel left at that name.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

MiB = 1024**2


def copy_regular_files(source: Path, target: Path, *, max_file_bytes: int,
                       max_total_bytes: int) -> dict[str, str]:
    """Copy the regular files directly inside ``source`` into the new
    directory ``target``.

    Never follows a symbolic link (``source`` itself included), never opens
    anything but a regular file, and copies no file larger than
    ``max_file_bytes`` nor more than ``max_total_bytes`` in all. Returns the
    names left behind, each with the reason, in words for a student.
    """
    target.mkdir(mode=0o700)
    skipped: dict[str, str] = {}
    try:
        if source.is_symlink() or not source.is_dir():
            return skipped
        entries = sorted(os.scandir(source), key=lambda e: e.name)
    except OSError:
        return skipped
    total = 0
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            skipped[entry.name] = (
                "it is a symbolic link, not a file your notebook saved"
                if entry.is_symlink() else "it could not be opened"
            )
            continue
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            skipped[entry.name] = f"it is {kind}"
            continue
        with os.fdopen(fd, "rb") as source_file:
            if info.st_size > max_file_bytes or total + info.st_size > max_total_bytes:
                skipped[entry.name] = (
                    f"it is {info.st_size / MiB:.0f} MiB, over the grader's limit of "
                    f"{min(max_file_bytes, max_total_bytes - total) / MiB:.0f} MiB"
                )
                continue
            data = source_file.read(info.st_size + 1)
        if len(data) > info.st_size:
            skipped[entry.name] = "it was still being written"
            continue
        total += len(data)
        _write_new(target / entry.name, data)
    return skipped


def replace_file(path: Path, data: str | bytes) -> None:
    """Write ``path`` afresh: whatever is at that name (a file, a symbolic
    link, a directory, a FIFO) is removed first, and the new file is created
    exclusively, so the write cannot land anywhere else."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()
    _write_new(path, data.encode() if isinstance(data, str) else data)


def create_new(path: Path):
    """Open ``path`` for writing only if nothing is at that name, not even a
    dangling link (``O_EXCL|O_NOFOLLOW``); returns the binary file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "wb")


def _write_new(path: Path, data: bytes) -> None:
    with create_new(path) as f:
        f.write(data)
