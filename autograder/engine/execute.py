"""Stage 2, execute: run the prepared notebook in a fresh kernel with nbclient,
within the assignment's limits and, where it works, inside a sandbox.

A cell that raises does not stop the run. A cell that kills the kernel (a
crash in native code, ``os._exit``, a limit the watchdog enforces) is skipped:
the notebook runs again from the start in a fresh kernel without it, at most
:data:`MAX_RESTARTS` times and within the notebook's time budget, so the
cells after it can still be graded.

A run's kernels start through its :class:`Kernels`, which a caller may make
before the run to start the first kernel ahead of need (a batch's worker
does, while the previous submission is evaluated).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from traitlets import List, Unicode

from autograder.course import PACKAGE_DIR, SUITES_DIR, Limits, grading_backend
from autograder.datasets._files import DATA_DIR_ENV, MANIFEST_NAME, OFFLINE_ENV, kit_data_dir
from autograder.engine import gpu, sandbox, untrusted
from autograder.engine.prepare import grade_id
from autograder.errors import StopGrading

# TensorFlow's C++ start-up chatter goes to the kernel's stderr; keep the
# executed notebook readable.
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
KERNEL_ENV_NAMES = {
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ",
    "PYTHONPATH", "LD_LIBRARY_PATH", "AUTOGRADER_DATA_DIR", "AUTOGRADER_OFFLINE",
}
KERNEL_ENV_PREFIXES = ("LC_", "KERAS_", "TF_", "CUDA_", "NVIDIA_", "XLA_", "OMP_", "MKL_", "OPENBLAS_")
"""The grader's environment variables the kernel inherits. Nothing else
passes: tokens and credentials in the grader's environment stay out of reach
of the student's code (and of its outputs, which become feedback)."""
MAX_RESTARTS = 2
"""Fresh kernels started after the kernel died, each without the cell that killed it."""
EXPORT_ALLOWANCE = 60
"""Seconds the grader's export always gets after the notebook, even when the
notebook used its whole time budget. Beyond that the export counts against
the budget: saving takes seconds, and a notebook that replaced a function
saving calls (keras.Model.save, say) must not train on unmeasured."""
GIB = 1024**3


class KernelStartError(StopGrading):
    """No kernel could be started: a problem of the grading machine, not the submission."""


@dataclass
class Execution:
    """What happened when the notebook ran."""

    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kernel_died: bool = False
    """Whether the kernel died at least once (see the notes for where and why)."""
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    """Each error a cell raised in the last run: (where, exception name, message)."""


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel behind a command prefix (the bwrap invocation)."""

    command_prefix = List(Unicode())

    def format_kernel_cmd(self, extra_arguments=None):
        return [*self.command_prefix, *super().format_kernel_cmd(extra_arguments)]


class LimitedClient(NotebookClient):
    """An nbclient that keeps at most ``max_output_bytes`` of cell output,
    remembers whether a cell timed out, and keeps each cell's execute reply
    (whether a cell failed, even when the notebook hid its traceback)."""

    max_output_bytes = 16 * 1024**2
    output_bytes = 0
    output_truncated = False
    timed_out = False
    """Whether the last cell hit its timeout (the kernel reports only KeyboardInterrupt)."""
    last_reply: dict | None = None
    _alive_watch = None

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timed_out = True
        reply = await super()._async_handle_timeout(timeout, cell)
        # nbclient stops watching whether the kernel lives once a cell times out,
        # then waits a whole timeout again for the reply: watch again, so that a
        # kernel killed for ignoring its interrupt is noticed at once. (A cell
        # can time out twice, on its reply and on the interrupt's: one watch.)
        if self._alive_watch is None:
            self._alive_watch = asyncio.ensure_future(self._async_poll_kernel_alive())
        return reply

    async def async_execute_cell(self, *args, **kwargs):
        try:
            return await super().async_execute_cell(*args, **kwargs)
        finally:
            if self._alive_watch is not None:
                self._alive_watch.cancel()
                self._alive_watch = None

    async def _async_check_alive(self):
        if self.kc is None:  # a watch that outlived its cell: the client is closed
            raise DeadKernelError("Kernel client closed")
        # The kernel's process first: the heartbeat takes seconds to miss a dead kernel.
        if self.km is not None and not await self.km.is_alive():
            raise DeadKernelError("Kernel died")
        await super()._async_check_alive()

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        self.last_reply = exec_reply
        return await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        self.output_bytes += size
        if self.output_bytes > self.max_output_bytes:
            if not self.output_truncated:
                self.output_truncated = True
                outs.append(nbformat.v4.new_output(
                    "stream", name="stdout",
                    text=f"[output limit of {self.max_output_bytes // 1024**2} MiB reached; "
                         "further output was dropped]\n",
                ))
            return None
        return super().output(outs, msg, display_id, cell_index)


class CappedLog:
    """The kernel's own stdout and stderr (what reaches its file descriptors,
    not cell outputs), kept in ``path`` up to ``max_bytes``. The rest is read
    and dropped, so a kernel that floods them neither blocks nor fills the disk."""

    def __init__(self, path: Path, max_bytes: int):
        self.max_bytes = max_bytes
        self.written = self.dropped = 0
        self.read_fd, self.write_fd = os.pipe()
        self.path = path
        self._file = untrusted.create_new(path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        poller = select.poll()
        poller.register(self.read_fd, select.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(200):
                continue
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                return
            keep = chunk[: max(0, self.max_bytes - self.written)]
            if keep:
                self._file.write(keep)
                self._file.flush()
                self.written += len(keep)
            self.dropped += len(chunk) - len(keep)

    def tail(self, max_chars: int = 1500) -> str:
        """The end of what the kernel has written so far (after a moment for
        the reader to catch up)."""
        time.sleep(0.3)
        try:
            return self.path.read_bytes()[-max_chars:].decode(errors="replace").strip()
        except OSError:
            return ""

    def close(self):
        os.close(self.write_fd)
        self._thread.join(timeout=2)  # what the kernel wrote last
        self._stop.set()  # a leftover process may hold the pipe open
        self._thread.join(timeout=2)
        if self.dropped:
            self._file.write(f"\n[{self.dropped} more bytes were dropped: log limit reached]\n".encode())
        self._file.close()
        os.close(self.read_fd)


class Watchdog(threading.Thread):
    """Stops the kernel when it and its children start too many processes, use
    too much memory (their proportional resident memory plus what they stored
    in the sandbox's memory-backed ``/tmp`` and ``/dev/shm``), or run past
    ``deadline`` (a cell that ignored its interrupt), and remembers why."""

    GRACE = 30
    """Seconds a cell may go on after its timeout before the kernel is killed."""

    def __init__(self, root: psutil.Process, limits: Limits, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root = root
        self.limits = limits
        self.interval = interval
        self.reason: str | None = None
        self.deadline = float("inf")
        self._stop = threading.Event()
        self._own_mounts = _mount_namespace(os.getpid())

    def _tree(self):
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _private_files_bytes(self, tree) -> int:
        """Bytes stored in the sandbox's private tmpfs mounts, read through a
        process that lives in the sandbox's mount namespace (none without one)."""
        for process in tree:
            namespace = _mount_namespace(process.pid)
            if namespace is None or namespace == self._own_mounts:
                continue
            used = 0
            for mount in sandbox.PRIVATE_TMPFS:
                try:
                    stats = os.statvfs(f"/proc/{process.pid}/root{mount}")
                except OSError:
                    continue
                used += (stats.f_blocks - stats.f_bfree) * stats.f_frsize
            return used
        return 0

    def run(self):
        while not self._stop.wait(self.interval):
            tree = self._tree()
            if not tree:
                return
            if len(tree) > self.limits.max_processes:
                self.reason = (
                    f"process limit of {self.limits.max_processes} exceeded: the kernel was stopped."
                )
            else:
                limit = self.limits.memory_gib * GIB
                files = self._private_files_bytes(tree)
                used = sum(_rss(process) for process in tree)
                if used + files > limit:
                    # Resident sizes count pages shared after a fork once per process;
                    # confirm with proportional sizes (slower to read) before stopping.
                    used = sum(_pss(process) for process in tree)
                if used + files > limit:
                    also = f" (counting {files / GIB:.1f} GiB of files in /tmp or /dev/shm)" if files > 0.1 * GIB else ""
                    self.reason = (
                        f"memory limit of {self.limits.memory_gib:g} GiB exceeded{also}: "
                        "the kernel was stopped."
                    )
                elif time.monotonic() > self.deadline:
                    self.reason = "a cell did not stop when interrupted at its time limit: the kernel was stopped."
            if self.reason:
                kill_group(self.root)
                for process in reversed(tree):
                    try:
                        process.kill()
                    except psutil.NoSuchProcess:
                        pass
                return

    def stop(self):
        self._stop.set()


def _rss(process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def _pss(process) -> int:
    """A process's proportional set size: its resident memory, with pages it
    shares (a forked child's copy-on-write pages) split among the sharers, so
    a tree of forked processes is not counted many times over. Falls back to
    the resident set size where the kernel does not say."""
    try:
        with open(f"/proc/{process.pid}/smaps_rollup") as rollup:
            return sum(
                int(line.split()[1]) * 1024 for line in rollup
                if line.startswith(("Pss:", "SwapPss:"))
            )
    except (OSError, ValueError, IndexError):
        return _rss(process)


def _mount_namespace(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return None


def kill_group(leader: psutil.Process) -> None:
    """Kill the process group ``leader`` leads (the kernel starts in a session
    of its own), which also reaches children that left the kernel's process
    tree. Only while the leader is still the process we started (psutil
    checks that its pid was not reused), and never the grader's own group."""
    try:
        if leader.is_running() and os.getpgid(leader.pid) == leader.pid != os.getpgrp():
            os.killpg(leader.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, psutil.Error):
        pass


def _where(cell, index: int) -> str:
    return f"cell {grade_id(cell)!r}" if grade_id(cell) else f"cell {index + 1}"


def _error_note(cell, index: int, timeout: int | None, reply: dict | None) -> str | None:
    """What went wrong in ``cell``; ``timeout`` is set when it was interrupted.

    The execute reply says whether the cell failed even when the notebook
    replaced IPython's ``showtraceback`` so that no error output appears."""
    where = _where(cell, index)
    if timeout is not None:
        return f"{where} ran longer than the {timeout} s limit and was interrupted."
    content = (reply or {}).get("content", {})
    if content.get("status") == "error":
        return f"{where} raised {content.get('ename')}: {str(content.get('evalue'))[:200]}"
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{where} raised {output.get('ename')}: {str(output.get('evalue'))[:200]}"
    return None


def kernel_env(workdir: Path, data_view: Path | None = None,
               device: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the student's kernel: the allowed part of the
    grader's (see :data:`KERNEL_ENV_NAMES`), writable configuration caches,
    given a ``data_view`` the loaders pointed at it alone, offline, and the
    ``device`` variables (:func:`autograder.engine.gpu.kernel_env`), which
    override any inherited ones."""
    env = {
        name: value for name, value in os.environ.items()
        if name in KERNEL_ENV_NAMES or name.startswith(KERNEL_ENV_PREFIXES)
    }
    if data_view is not None:
        env.update({DATA_DIR_ENV: str(data_view), OFFLINE_ENV: "1"})
    env.update(device or {})
    return {
        **env, **KERNEL_ENV,
        # Configuration caches must be writable even when HOME is hidden.
        "MPLCONFIGDIR": str(workdir / ".config" / "matplotlib"),
        "IPYTHONDIR": str(workdir / ".config" / "ipython"),
    }


def data_view_files(view: Path | None) -> dict[Path, Path]:
    """The links of a data view (see :mod:`autograder.datasets.served`):
    path in the view -> the real file it points at."""
    files = {}
    for directory, _, names in os.walk(view) if view else ():
        for name in names:
            link = Path(directory) / name
            if link.is_symlink():
                files[link] = link.resolve()
    return files


def _kernel_manager(mode: str, runtime_dir: Path, workdir: Path, hidden: list[Path],
                    limits: Limits, data_view: Path | None, allotted: gpu.Gpu | None):
    # Asynchronous managers, as nbclient expects: a blocking client would stall
    # its event loop, and with it the check that notices a dead kernel.
    if mode == "none":
        return AsyncKernelManager(kernel_name="python3")
    seccomp_file = None
    program = sandbox.seccomp_filter()
    if program is not None:
        seccomp_file = runtime_dir / "seccomp.bpf"
        seccomp_file.write_bytes(program)
    # Without a network namespace's loopback the kernel talks over Unix sockets,
    # which live in a short private directory (socket paths are length-limited).
    manager = SandboxedKernelManager(
        kernel_name="python3",
        transport="ipc",
        ip=str(runtime_dir / "kernel"),
        connection_file=str(runtime_dir / "connection.json"),
        command_prefix=sandbox.bwrap_command(
            writable=[workdir, runtime_dir],
            # Python and its packages, the kit (the loaders) and the manifest
            # the loaders verify files against; no other file of the kit's data folder.
            readable=[*sandbox.python_paths(PACKAGE_DIR.parent), PACKAGE_DIR,
                      kit_data_dir() / MANIFEST_NAME],
            hidden=[SUITES_DIR, *hidden],
            data_files=data_view_files(data_view),
            tmpfs_bytes=int(limits.memory_gib * GIB),
            seccomp_file=seccomp_file,
            devices=gpu.device_nodes(allotted.node_number) if allotted else (),
        ),
    )
    # A signal would reach bwrap, not the kernel: interrupt with a message.
    manager.kernel_spec.interrupt_mode = "message"
    return manager


@dataclass
class _Attempt:
    """One run of the notebook in one kernel."""

    notes: list[str] = field(default_factory=list)
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    died_at: int | None = None
    reason: str | None = None
    output_truncated: bool = False
    budget_exhausted: bool = False


@dataclass
class _Kernel:
    """A started kernel: the notebook client connected to it, its process,
    its private runtime directory, and the seconds its start took."""

    client: LimitedClient
    root: psutil.Process
    runtime_dir: Path
    seconds: float
    ahead: bool = False
    """Started by :meth:`Kernels.start_ahead`, before the run."""

    def alive(self) -> bool:
        return run_sync(self.client.km.is_alive)()

    @contextmanager
    def session(self):
        """Use the kernel; then stop it and whatever it left running in its
        session (a daemon without the sandbox), and remove its runtime directory."""
        try:
            with self.client.setup_kernel():
                try:
                    yield
                finally:
                    kill_group(self.root)  # while the kernel still holds its pid
        finally:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def stop(self) -> None:
        with self.session():
            pass


class Kernels:
    """Where one run's kernels start (the work directory, the sandbox and
    what it hides, the data view, the GPU) and the log their own output goes
    to (``kernel.log`` in the work directory).

    :meth:`start_ahead` starts the run's first kernel before the run: made
    before its turn, a submission's kernel starts while the previous one is
    evaluated. The run uses it if it is still alive when the run begins,
    else it starts a new one (a kernel that died idle is no cell's fault).
    :meth:`close` stops a kernel the run never used and closes the log;
    :func:`run` closes its ``kernels`` when it ends.
    """

    def __init__(self, workdir: Path, limits: Limits, *, sandbox_mode: str = "none",
                 hidden: Sequence[Path] = (), data_view: Path | None = None,
                 allotted: gpu.Gpu | None = None, gpu_memory_fraction: float = 1.0):
        self.workdir = workdir
        self.limits = limits
        self.sandbox_mode = sandbox_mode
        self.hidden = list(hidden)
        self.data_view = data_view
        self.allotted = allotted
        self.device_env = gpu.kernel_env(gpu=allotted, memory_fraction=gpu_memory_fraction)
        (workdir / ".config").mkdir(exist_ok=True)  # IPython warns when its parent is missing
        setup = gpu.kernel_setup_code(gpu=allotted, memory_fraction=gpu_memory_fraction,
                                      backend=grading_backend())
        if setup:  # run by IPython at the kernel's start, before any student cell
            startup = workdir / ".config" / "ipython" / "profile_default" / "startup"
            startup.mkdir(parents=True)
            untrusted.replace_file(startup / "00-gpu-memory.py", setup + "\n")
        self.log = CappedLog(workdir / "kernel.log", int(limits.max_output_mib * 1024**2))
        self._ahead: _Kernel | None = None
        self._closed = False

    def start_ahead(self) -> None:
        """Start the kernel the run will use first, now (a
        :class:`KernelStartError` when it cannot start)."""
        self._ahead = self._start()
        self._ahead.ahead = True

    def take(self) -> _Kernel:
        """The kernel started ahead while it is alive, else a new one."""
        kernel, self._ahead = self._ahead, None
        if kernel is not None and kernel.alive():
            return kernel
        if kernel is not None:
            kernel.stop()
        return self._start()

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.stop()
            self._ahead = None
        if not self._closed:
            self._closed = True
            self.log.close()

    def _start(self) -> _Kernel:
        client = LimitedClient(
            nbformat.v4.new_notebook(),  # the run's notebook replaces it
            timeout=self.limits.cell_timeout,
            startup_timeout=self.limits.startup_timeout,
            kernel_name="python3",
            allow_errors=True,
            interrupt_on_timeout=True,
            resources={"metadata": {"path": str(self.workdir)}},
        )
        client.max_output_bytes = int(self.limits.max_output_mib * 1024**2)
        runtime_dir = Path(tempfile.mkdtemp(prefix="ag-kernel-"))
        started = time.perf_counter()
        try:
            client.km = _kernel_manager(self.sandbox_mode, runtime_dir, self.workdir, self.hidden,
                                        self.limits, self.data_view, self.allotted)
            client.start_new_kernel(env=kernel_env(self.workdir, self.data_view, self.device_env),
                                    stdout=self.log.write_fd, stderr=self.log.write_fd)
            client.start_new_kernel_client()
        except Exception as exc:
            if client.km is not None and client.km.has_kernel:
                run_sync(client.km.shutdown_kernel)(now=True)
            shutil.rmtree(runtime_dir, ignore_errors=True)
            said = self.log.tail()
            raise KernelStartError(
                "Could not start a python3 Jupyter kernel"
                f"{' in the sandbox' if self.sandbox_mode == 'bwrap' else ''} "
                f"within {self.limits.startup_timeout} s ({type(exc).__name__}: {exc})."
                + (f" The kernel said:\n{said}\n" if said else " The kernel printed nothing. ")
                + "Check that ipykernel is installed in the grader's environment and run "
                "`autograder doctor`."
            ) from exc
        return _Kernel(client, psutil.Process(client.km.provisioner.process.pid), runtime_dir,
                       time.perf_counter() - started)


def run(notebook, workdir: Path, limits: Limits, final_cell=None, *,
        sandbox_mode: str = "none", hidden: Sequence[Path] = (),
        data_view: Path | None = None, allotted: gpu.Gpu | None = None,
        gpu_memory_fraction: float = 1.0, kernels: Kernels | None = None) -> Execution:
    """Execute ``notebook`` in ``workdir`` (outputs are written into the cells),
    then ``final_cell`` in the same kernel. Cell errors do not stop the run; a
    cell that kills the kernel is skipped in a fresh kernel (see the module).

    ``sandbox_mode`` is ``"bwrap"`` or ``"none"`` (see :mod:`sandbox`);
    ``hidden`` paths are invisible to a sandboxed kernel; ``data_view`` is
    the directory of data files the kernel's loaders read (see
    :mod:`autograder.datasets.served`); ``allotted`` the GPU the kernel may
    use, at most ``gpu_memory_fraction`` of its memory (none: no GPU).
    ``kernels``, made by the caller for this ``workdir`` and ``limits``
    (its first kernel perhaps started ahead), replaces those keywords; the
    run closes it.
    """
    if kernels is None:
        kernels = Kernels(workdir, limits, sandbox_mode=sandbox_mode, hidden=hidden,
                          data_view=data_view, allotted=allotted,
                          gpu_memory_fraction=gpu_memory_fraction)
    execution = Execution()
    student_cells = len(notebook.cells)
    if final_cell is not None:
        notebook.cells.append(final_cell)
    skipped: set[int] = set()
    deaths: list[str] = []
    budget = {"deadline": None}
    truncated = False
    try:
        while True:
            attempt = _run_once(notebook, student_cells, limits, kernels, skipped, budget, execution)
            truncated = truncated or attempt.output_truncated
            if attempt.died_at is None:
                break
            execution.kernel_died = True
            if attempt.reason:
                deaths.append(attempt.reason[0].upper() + attempt.reason[1:])
            index = attempt.died_at
            if index >= student_cells:
                deaths.append(
                    "The kernel died while the grader was saving your variables (model, history, "
                    "arrays), so none of them could be graded. Does your notebook replace a "
                    "function of Keras, NumPy or Python that saving uses? Remove that code."
                )
                break
            where = _where(notebook.cells[index], index)
            how = "" if attempt.reason else (
                " (for example os._exit, a crash in native code such as a segmentation fault, "
                "or running out of memory)"
            )
            if len(skipped) >= MAX_RESTARTS or attempt.budget_exhausted:
                deaths.append(
                    f"The kernel died in {where}{how}; it was not restarted again, so the cells "
                    "after it did not run."
                )
                break
            deaths.append(
                f"The kernel died in {where}{how}. The notebook was run again in a fresh kernel "
                "without that cell, so the cells after it could still be graded."
            )
            skipped.add(index)
            notebook.cells[index].setdefault("outputs", []).append(nbformat.v4.new_output(
                "stream", name="stderr",
                text="[the grader skipped this cell on the next run: the kernel died in it]\n",
            ))
    finally:
        kernels.close()
    # What the deaths were, then what went wrong in the cells of the last run.
    execution.notes[:0] = deaths + attempt.notes
    execution.errors = attempt.errors
    if truncated:
        execution.notes.append(
            f"Your notebook printed more than the output limit of {limits.max_output_mib:g} MiB; "
            "the rest of its output was dropped."
        )
    if kernels.log.dropped:
        execution.notes.append(
            f"Your notebook wrote more than {limits.max_output_mib:g} MiB straight to the "
            "kernel's standard output or error; the rest was dropped."
        )
    untrusted.replace_file(workdir / "executed.ipynb", nbformat.writes(notebook))
    return execution


def _run_once(notebook, student_cells: int, limits: Limits, kernels: Kernels,
              skipped: set[int], budget: dict, execution: Execution) -> _Attempt:
    """Take a kernel, run every cell not in ``skipped``, stop it."""
    attempt = _Attempt()
    kernel = kernels.take()
    execution.timings["kernel_start"] = execution.timings.get("kernel_start", 0.0) + kernel.seconds
    if kernel.ahead:
        execution.timings["kernel_start_ahead"] = kernel.seconds
    kernel.client.nb = notebook
    watchdog = Watchdog(kernel.root, limits)
    watchdog.start()
    try:
        with kernel.session():
            _run_cells(kernel.client, notebook, student_cells, limits, skipped, budget, attempt,
                       watchdog, execution)
    finally:
        watchdog.stop()
    attempt.reason = watchdog.reason
    attempt.output_truncated = kernel.client.output_truncated
    return attempt


def _run_cells(client, notebook, student_cells: int, limits: Limits, skipped: set[int],
               budget: dict, attempt: _Attempt, watchdog: Watchdog, execution: Execution) -> None:
    if budget["deadline"] is None:
        budget["deadline"] = time.monotonic() + limits.notebook_timeout
    started = time.perf_counter()
    index = 0
    exporting = False
    try:
        for index, cell in enumerate(notebook.cells[:student_cells]):
            if index in skipped:
                continue
            remaining = budget["deadline"] - time.monotonic()
            if remaining <= 0:
                attempt.budget_exhausted = True
                attempt.notes.append(
                    f"The notebook ran longer than its time budget of {limits.notebook_timeout} s; "
                    f"cells from cell {index + 1} on were not run."
                )
                break
            client.timeout = max(1, int(min(limits.cell_timeout, remaining)))
            client.timed_out = False
            client.last_reply = None
            watchdog.deadline = time.monotonic() + client.timeout + Watchdog.GRACE
            client.execute_cell(cell, index)
            timeout = client.timeout if client.timed_out else None
            note = (
                _error_note(cell, index, timeout, client.last_reply)
                if cell.cell_type == "code" else None
            )
            if note:
                attempt.notes.append(note)
            content = (client.last_reply or {}).get("content", {})
            if content.get("status") == "error":
                attempt.errors.append((_where(cell, index), str(content.get("ename")),
                                       str(content.get("evalue"))[:2000]))
        if len(notebook.cells) > student_cells:
            _add_time(execution, "execute", started)
            exporting, index, started = True, student_cells, time.perf_counter()
            remaining = budget["deadline"] - time.monotonic()
            client.timeout = max(1, int(min(limits.cell_timeout, max(remaining, EXPORT_ALLOWANCE))))
            client.timed_out = False
            watchdog.deadline = time.monotonic() + client.timeout + Watchdog.GRACE
            client.execute_cell(notebook.cells[index], index)
            if client.timed_out:
                attempt.notes.append(
                    f"Saving your variables for grading ran past its {client.timeout} s (what was "
                    f"left of the notebook's time budget, or at least {EXPORT_ALLOWANCE} s) and was "
                    "stopped, so what it had not saved by then could not be graded. Saving takes "
                    "seconds: does your notebook replace a function that saving uses, such as "
                    "keras.Model.save? Remove that code."
                )
    except DeadKernelError:
        attempt.died_at = index
    finally:
        _add_time(execution, "export" if exporting else "execute", started)


def _add_time(execution: Execution, stage: str, started: float) -> None:
    execution.timings[stage] = execution.timings.get(stage, 0.0) + time.perf_counter() - started
