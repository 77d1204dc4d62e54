"""Confine the student's kernel with bubblewrap (``bwrap``).

The sandbox is an allow-list. The kernel starts in an empty root and sees
only what is bound into it, read-only: the system's programs and libraries
(:data:`SYSTEM_PATHS`), Python and its packages (:func:`python_paths`), the
kit's package without
its hidden suites, the kit's dataset manifest, the data files its assignment
loads (a *data view*, see :mod:`autograder.datasets.served`) and its work
directory, the one place it can write besides a private ``/tmp`` and
``/dev/shm`` (each capped in size). Nothing else of the grader's file system
exists inside: not the course directory, not other checkouts or courses, not
``/home``, ``/root``, ``/srv`` or ``/opt``.

The kernel holds no privilege to undo that, whoever runs the grader, root
included: it runs as ``nobody`` (uid 65534) in its own user namespace with
every capability dropped and ``no_new_privs`` set, and a seccomp filter
(:func:`seccomp_filter`) answers ``EPERM`` to mount, unmount, ``unshare``,
``setns``, ``chroot``, ``pivot_root``, ``ptrace`` and to creating namespaces
through ``clone``. It has no network (``--unshare-all``: new network, PID,
IPC, UTS and user namespaces).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import site
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from autograder.errors import StopGrading

MODES = ("auto", "bwrap", "none")

SANDBOX_UID = 65534
"""The kernel's user and group inside its namespace: ``nobody``, never root."""


class SandboxError(StopGrading):
    """The requested sandbox cannot be used on this machine."""


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot run here, or ``None`` when it can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed; on Debian/Ubuntu: apt-get install bubblewrap"
    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
         "--cap-drop", "ALL", "--die-with-parent", "true"],
        capture_output=True, text=True, timeout=30,
    )
    if probe.returncode != 0:
        return f"bwrap cannot create namespaces here: {probe.stderr.strip()[:300]}"
    return None


def choose(mode: str) -> tuple[str, str | None]:
    """The sandbox to use for ``mode`` and a warning for staff, if any.

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


PRIVATE_TMPFS = ("/tmp", "/dev/shm")
"""Where the kernel may write besides its work directory: memory-backed,
size-capped, and counted in its memory by the watchdog."""

SYSTEM_PATHS = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    # Of /etc only what programs need to start: no keys, no shadow, no credentials.
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
    "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/localtime", "/etc/hosts",
    "/etc/ssl/certs", "/etc/ca-certificates", "/etc/fonts", "/etc/mime.types",
    # CPU count and cgroup limits, which the numerical libraries size their threads by.
    "/sys/devices/system/cpu", "/sys/fs/cgroup",
)
"""The machine's own files the kernel sees (those that exist), read-only."""


def python_paths(checkout: Path) -> list[Path]:
    """Where the grader's Python and its packages live, for the kernel to
    import from: the interpreter's prefixes and site directories (a virtual
    environment inside the kit's ``checkout`` included), and the folders on
    ``PYTHONPATH`` (a GPU grader may keep Keras or Jupyter in one of its own).
    Never the ``checkout`` itself (the folder holding the kit's package, and
    perhaps its solutions) or a folder above it, and no ``PYTHONPATH`` entry
    inside it: the kit's package is bound on its own, with its suites covered.
    Nor ``/tmp`` or ``/dev/shm`` (they hold other submissions' work; the
    kernel gets private ones) or a folder above them."""
    checkout = Path(os.path.abspath(checkout))
    own = [sys.prefix, sys.base_prefix, *site.getsitepackages(), site.getusersitepackages()]
    added = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    paths = []
    for entry, may_be_inside in [*((e, True) for e in own), *((e, False) for e in added)]:
        if not entry:
            continue
        path = Path(os.path.abspath(entry))
        if path == checkout or _inside(checkout, path) or (_inside(path, checkout) and not may_be_inside):
            continue
        if any(path == Path(p) or _inside(Path(p), path) for p in PRIVATE_TMPFS):
            continue
        if path.is_dir() and path not in paths:
            paths.append(path)
    return paths


# ---------------------------------------------------------------- seccomp

_SECCOMP_ARCHES = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
"""The machines the filter knows, with their AUDIT_ARCH, in the order of the
columns of the call numbers below."""
_REFUSED_CALLS = {
    # call: (number on x86_64, number on aarch64)
    "ptrace": (101, 117), "chroot": (161, 51), "pivot_root": (155, 41),
    "mount": (165, 40), "umount2": (166, 39), "unshare": (272, 97), "setns": (308, 268),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "kexec_load": (246, 104), "init_module": (175, 105), "finit_module": (313, 273),
    "delete_module": (176, 106), "bpf": (321, 280), "perf_event_open": (298, 241),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "name_to_handle_at": (303, 264), "open_by_handle_at": (304, 265),
    "userfaultfd": (323, 282),
}
"""Calls that fail with EPERM, whatever their arguments."""
_CLONE = (56, 220)
"""clone, whose namespace flags are refused (same columns)."""
# The new mount API has the same numbers on every architecture.
_MOUNT_API = {"open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
              "fsmount": 432, "fspick": 433, "mount_setattr": 442}
_CLONE3 = 435
_NEW_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_EPERM, _ENOSYS = 1, 38
_RET_ALLOW, _RET_ERRNO, _RET_KILL = 0x7FFF0000, 0x00050000, 0x80000000
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06


def seccomp_filter(machine: str | None = None) -> bytes | None:
    """A classic-BPF seccomp program (what ``bwrap --seccomp`` reads) that
    fails the calls which could change what the kernel sees or reach other
    processes with ``EPERM``, and ``clone3`` with ``ENOSYS`` (its flags
    cannot be inspected; C libraries then fall back to ``clone``, whose
    namespace flags are refused). ``None`` on an architecture not listed."""
    machine = machine or platform.machine()
    if machine not in _SECCOMP_ARCHES:
        return None
    arch, column = _SECCOMP_ARCHES[machine], list(_SECCOMP_ARCHES).index(machine)
    calls = {name: numbers[column] for name, numbers in _REFUSED_CALLS.items()}
    clone = _CLONE[column]

    def op(code, k, jt=0, jf=0):
        return struct.pack("=HBBI", code, jt, jf, k)

    program = [
        op(_LD_ABS, 4),  # seccomp_data.arch
        op(_JEQ, arch, 1, 0), op(_RET, _RET_KILL),  # no other ABI (i386, x32 calls below)
        op(_LD_ABS, 0),  # seccomp_data.nr
    ]
    if arch == 0xC000003E:  # x86-64 also accepts x32 numbers
        program += [op(_JGE, 0x40000000, 0, 1), op(_RET, _RET_ERRNO | _EPERM)]  # x32 numbers
    for number in sorted({*calls.values(), *_MOUNT_API.values()}):
        program += [op(_JEQ, number, 0, 1), op(_RET, _RET_ERRNO | _EPERM)]
    program += [op(_JEQ, _CLONE3, 0, 1), op(_RET, _RET_ERRNO | _ENOSYS)]
    program += [
        op(_JEQ, clone, 0, 3),
        op(_LD_ABS, 16),  # the low half of clone's flags (arg 0)
        op(_JSET, _NEW_NAMESPACE_FLAGS, 0, 1), op(_RET, _RET_ERRNO | _EPERM),
        op(_RET, _RET_ALLOW),
    ]
    return b"".join(program)


# ---------------------------------------------------------------- the command


def bwrap_command(*, writable: list[Path], readable: list[Path], hidden: list[Path] = (),
                  data_files: Mapping[Path, Path] | None = None, tmpfs_bytes: int | None = None,
                  seccomp_file: Path | None = None, devices: Sequence[Path] = ()) -> list[str]:
    """The ``bwrap`` prefix for the kernel command (see the module).

    ``readable`` directories and files (Python, the kit, its manifest) are
    bound read-only at the path they are spelled by, wherever it leads;
    ``hidden`` paths inside them (the hidden suites inside the kit) are
    covered by empty read-only directories (``/dev/null`` for a file);
    ``data_files`` (path in the kernel's data view -> real file) are bound
    read-only one by one; ``writable`` directories (the work directory, the
    kernel's connection directory) read-write. ``/tmp`` and ``/dev/shm`` are
    private and hold at most ``tmpfs_bytes`` each. ``seccomp_file`` holds
    :func:`seccomp_filter`'s program; the command opens it as descriptor 3
    for bwrap. ``devices`` are the GPU's device nodes the kernel may open
    (``gpu.device_nodes``), bound at their own paths; with them, the driver's
    ``/proc`` and ``/sys`` files are shown read-only. Without them the
    kernel's ``/dev`` holds no GPU.
    """
    command = [
        "bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--unshare-user",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
        # In its own PID namespace the kernel's parent is PID 1, which ipykernel
        # reads as "the client died"; --die-with-parent covers that case instead.
        "--unsetenv", "JPY_PARENT_PID",
    ]
    for path in map(Path, SYSTEM_PATHS):
        if path.is_symlink():  # /bin -> usr/bin on a merged-/usr system
            command += ["--symlink", os.readlink(path), str(path)]
        elif path.exists():
            command += ["--ro-bind", str(path), str(path)]
    command += ["--proc", "/proc", "--dev", "/dev"]
    for node in devices:
        command += ["--dev-bind", str(node), str(node)]
    if devices:  # what the NVIDIA driver reads to find its GPU
        for path in ("/proc/driver/nvidia", "/sys/bus/pci", "/sys/devices"):
            if Path(path).exists():
                command += ["--ro-bind", path, path]
    size = ["--size", str(int(tmpfs_bytes))] if tmpfs_bytes else []
    for private in PRIVATE_TMPFS:
        command += [*size, "--tmpfs", private]
    # Outer paths first: a bind laid inside one that comes later would vanish under it.
    shown = sorted(dict.fromkeys(Path(os.path.abspath(p)) for p in readable if Path(p).exists()),
                   key=lambda p: len(p.parts))
    for path in shown:
        command += ["--ro-bind", str(path.resolve()), str(path)]
    covers = []
    for path in sorted(dict.fromkeys(Path(os.path.abspath(p)) for p in hidden),
                       key=lambda p: len(p.parts)):
        if not any(_inside(path, s) or path == s for s in shown):
            continue  # not bound in, so not there
        if path.is_dir():
            command += ["--tmpfs", str(path)]
            covers.append(path)
        elif path.exists():
            command += ["--ro-bind", "/dev/null", str(path)]
    for link, real in (data_files or {}).items():
        command += ["--ro-bind", str(Path(real).resolve()), str(link)]
    for path in writable:
        command += ["--bind", str(path), str(path)]
    for path in covers:
        command += ["--remount-ro", str(path)]
    command += ["--remount-ro", "/"]
    if seccomp_file is None:
        return command + ["--"]
    # bwrap reads the filter from a descriptor: open the file as 3, then run bwrap.
    return ["/bin/sh", "-c", 'exec 3<"$0" && exec "$@"', str(seccomp_file),
            *command, "--seccomp", "3", "--"]


def _inside(path: Path, directory: Path) -> bool:
    path, directory = Path(os.path.abspath(path)), Path(os.path.abspath(directory))
    return path != directory and directory in path.parents
