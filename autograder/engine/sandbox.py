"""Confine the student's kernel with bubblewrap (``bwrap``).

Inside the sandbox the kernel sees the system read-only, has no network
(``--unshare-all``: new network, PID, IPC, UTS and user namespaces), can write
only to its work directory and a private ``/tmp`` and ``/dev/shm`` (each
capped in size), and cannot see the grading user's home directory, the course
directory (its hidden suites, solutions, tests, git history, other
submissions, gradebook): those paths are covered with empty read-only
directories, and only what the kernel needs (Python, the kit's package and
its data) is bound back inside them.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

MODES = ("auto", "bwrap", "none")


class SandboxError(Exception):
    """The requested sandbox cannot be used on this machine."""


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot run here, or ``None`` when it can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed; on Debian/Ubuntu: apt-get install bubblewrap"
    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--unshare-all", "--die-with-parent", "true"],
        capture_output=True, text=True, timeout=30,
    )
    if probe.returncode != 0:
        return f"bwrap cannot create namespaces here: {probe.stderr.strip()[:300]}"
    return None


def choose(mode: str) -> tuple[str, str | None]:
    """The sandbox to use for ``mode`` and a warning to show, if any.

    ``auto`` uses bwrap where it works and falls back to none with a warning;
    ``bwrap`` insists (a :class:`SandboxError` if it cannot run).
    """
    if mode not in MODES:
        raise SandboxError(f"Unknown sandbox {mode!r}; use one of {', '.join(MODES)}.")
    if mode == "none":
        return "none", None
    problem = bwrap_problem()
    if problem is None:
        return "bwrap", None
    if mode == "bwrap":
        raise SandboxError(f"--sandbox bwrap was requested, but {problem}.")
    return "none", (
        f"WARNING: the student's code runs without a sandbox ({problem}); it can read "
        "the hidden suites and use the network."
    )


def data_dirs() -> list[Path]:
    """The dataset directories named in ``AUTOGRADER_DATA_DIR``, as absolute
    paths spelled as given (they may pass through symbolic links): bound back
    read-only, since one may sit under the sandbox's private ``/tmp``."""
    value = os.environ.get("AUTOGRADER_DATA_DIR", "")
    return [Path(os.path.abspath(d)) for d in value.split(os.pathsep) if d and Path(d).is_dir()]


PRIVATE_TMPFS = ("/tmp", "/dev/shm")
"""Where the kernel may write besides its work directory: memory-backed,
size-capped, and counted in its memory by the watchdog."""


def home_dir() -> Path | None:
    """The grading user's home directory, hidden from the kernel (keys,
    credentials, other courses), unless it is ``/`` itself."""
    home = Path(os.path.expanduser("~"))
    return home if home.is_dir() and home.resolve() != Path("/") else None


def bwrap_command(*, writable: list[Path], readable: list[Path], hidden: list[Path],
                  tmpfs_bytes: int | None = None) -> list[str]:
    """The ``bwrap`` prefix for the kernel command.

    The kernel gets a private ``/tmp`` and ``/dev/shm`` of at most
    ``tmpfs_bytes`` each. ``hidden`` paths and the home directory are covered
    with empty directories (``/dev/null`` for a file); ``readable``
    directories (Python, the kit, the datasets, which may sit inside a hidden
    one or under ``/tmp`` on a CI runner) are bound back read-only; hidden
    paths inside those are covered again; ``writable`` directories (the work
    directory, the kernel's connection directory) are bound read-write; and
    the covering directories are made read-only, so nothing can be written
    there.
    """
    size = ["--size", str(int(tmpfs_bytes))] if tmpfs_bytes else []
    command = [
        "bwrap", "--die-with-parent", "--new-session", "--unshare-all",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        # In its own PID namespace the kernel's parent is PID 1, which ipykernel
        # reads as "the client died"; --die-with-parent covers that case instead.
        "--unsetenv", "JPY_PARENT_PID",
    ]
    for private in PRIVATE_TMPFS:
        command += [*size, "--tmpfs", private]
    home = home_dir()
    # Outermost first, whatever order they come in: a cover laid inside one
    # that comes later would vanish under it.
    covered = sorted(dict.fromkeys(Path(os.path.abspath(p)) for p in ([home] if home else []) + list(hidden)),
                     key=lambda p: len(p.parts))
    shown = sorted((Path(p) for p in [*readable, *data_dirs()] if Path(p).exists()),
                   key=lambda p: len(Path(os.path.abspath(p)).parts))
    visible_covers = []

    def cover(path: Path):
        if path.is_dir():
            command.extend(["--tmpfs", str(path)])
            visible_covers.append(path)
        elif path.exists():
            command.extend(["--ro-bind", "/dev/null", str(path)])

    # 1. Cover the hidden paths; one inside another is covered already.
    for path in covered:
        if not any(_inside(path, other) for other in covered):
            cover(path)
    # 2. Bind back what the kernel needs, wherever it is.
    for path in shown:
        # The real directory, mounted where the kernel will look for it.
        command.extend(["--ro-bind", str(path.resolve()), str(path)])
        visible_covers[:] = [c for c in visible_covers if not _inside(c, path) and c != path]
    # 3. Cover again the hidden paths inside what was bound back (the suites in the kit).
    for path in covered:
        if any(_inside(path, shown_path) for shown_path in shown):
            cover(path)
    for path in writable:
        command.extend(["--bind", str(path), str(path)])
    # 4. Make the covers read-only: nothing can be stored in them.
    for path in dict.fromkeys(visible_covers):
        command.extend(["--remount-ro", str(path)])
    return command + ["--"]


def _inside(path: Path, directory: Path) -> bool:
    path, directory = Path(os.path.abspath(path)), Path(os.path.abspath(directory))
    return path != directory and directory in path.parents
