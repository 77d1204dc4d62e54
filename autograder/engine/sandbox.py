"""Confine the student's kernel with bubblewrap (``bwrap``).

Inside the sandbox the kernel sees the system read-only, has no network
(``--unshare-all``: new network, PID, IPC, UTS and user namespaces), can write
only to its work directory and a private ``/tmp``, and cannot see the hidden
suites, the solutions, the course's git history, other submissions or the
gradebook: those paths are covered with empty directories.
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


def bwrap_command(*, writable: list[Path], readable: list[Path], hidden: list[Path]) -> list[str]:
    """The ``bwrap`` prefix for the kernel command.

    The kernel gets a private ``/tmp``; ``readable`` directories (Python, the
    kit, the datasets, which may live under ``/tmp`` on a CI runner) are bound
    back read-only, then ``hidden`` paths are covered, then ``writable``
    directories (the work directory, the kernel's connection directory) are
    bound read-write. Later mounts win, so a hidden path stays hidden inside a
    readable one.
    """
    command = [
        "bwrap", "--die-with-parent", "--new-session", "--unshare-all",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        # In its own PID namespace the kernel's parent is PID 1, which ipykernel
        # reads as "the client died"; --die-with-parent covers that case instead.
        "--unsetenv", "JPY_PARENT_PID",
        "--tmpfs", "/tmp",
    ]
    for path in [*readable, *data_dirs()]:
        if path.exists():
            # The real directory, mounted where the kernel will look for it.
            command += ["--ro-bind", str(path.resolve()), str(path)]
    for path in hidden:
        if path.is_dir():
            command += ["--tmpfs", str(path)]
        elif path.exists():
            command += ["--ro-bind", "/dev/null", str(path)]
    for path in writable:
        command += ["--bind", str(path), str(path)]
    return command + ["--"]
