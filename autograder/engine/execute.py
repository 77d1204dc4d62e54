"""Stage 2, execute: run the prepared notebook in a fresh kernel with nbclient,
within the assignment's limits and, where it works, inside a sandbox."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from traitlets import List, Unicode

from autograder.course import PACKAGE_DIR, Limits
from autograder.datasets._files import kit_data_dir
from autograder.engine import sandbox
from autograder.engine.prepare import grade_id

# TensorFlow's C++ start-up chatter goes to the kernel's stderr; keep the
# executed notebook readable.
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
GIB = 1024**3


class KernelStartError(Exception):
    """No kernel could be started: a problem of the grading machine, not the submission."""


@dataclass
class Execution:
    """What happened when the notebook ran."""

    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kernel_died: bool = False


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel behind a command prefix (the bwrap invocation)."""

    command_prefix = List(Unicode())

    def format_kernel_cmd(self, extra_arguments=None):
        return [*self.command_prefix, *super().format_kernel_cmd(extra_arguments)]


class LimitedClient(NotebookClient):
    """An nbclient that keeps at most ``max_output_bytes`` of cell output and
    remembers whether a cell timed out."""

    max_output_bytes = 16 * 1024**2
    output_bytes = 0
    output_truncated = False
    timed_out = False
    """Whether the last cell hit its timeout (the kernel reports only KeyboardInterrupt)."""

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

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


class Watchdog(threading.Thread):
    """Stops the kernel when it and its children use too much memory, start
    too many processes, or run past ``deadline`` (a cell that ignored its
    interrupt), and remembers why."""

    GRACE = 30
    """Seconds a cell may go on after its timeout before the kernel is killed."""

    def __init__(self, pid: int, limits: Limits, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.limits = limits
        self.interval = interval
        self.reason: str | None = None
        self.deadline = float("inf")
        self._stop = threading.Event()

    def _tree(self):
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def run(self):
        while not self._stop.wait(self.interval):
            tree = self._tree()
            if not tree:
                return
            rss = 0
            for process in tree:
                try:
                    rss += process.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            if rss > self.limits.memory_gib * GIB:
                self.reason = (
                    f"memory limit of {self.limits.memory_gib:g} GiB exceeded: the kernel was stopped."
                )
            elif len(tree) > self.limits.max_processes:
                self.reason = (
                    f"process limit of {self.limits.max_processes} exceeded: the kernel was stopped."
                )
            elif time.monotonic() > self.deadline:
                self.reason = "a cell did not stop when interrupted at its time limit: the kernel was stopped."
            if self.reason:
                for process in reversed(tree):
                    try:
                        process.kill()
                    except psutil.NoSuchProcess:
                        pass
                return

    def stop(self):
        self._stop.set()


def _error_note(cell, index: int, timeout: int | None) -> str | None:
    """What went wrong in ``cell``; ``timeout`` is set when it was interrupted."""
    where = f"cell {grade_id(cell)!r}" if grade_id(cell) else f"cell {index + 1}"
    if timeout is not None:
        return f"{where} ran longer than the {timeout} s limit and was interrupted."
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{where} raised {output.get('ename')}: {str(output.get('evalue'))[:200]}"
    return None


def _kernel_manager(mode: str, runtime_dir: Path, workdir: Path, hidden: list[Path]):
    # Asynchronous managers, as nbclient expects: a blocking client would stall
    # its event loop, and with it the check that notices a dead kernel.
    if mode == "none":
        return AsyncKernelManager(kernel_name="python3")
    # Without a network namespace's loopback the kernel talks over Unix sockets,
    # which live in a short private directory (socket paths are length-limited).
    manager = SandboxedKernelManager(
        kernel_name="python3",
        transport="ipc",
        ip=str(runtime_dir / "kernel"),
        connection_file=str(runtime_dir / "connection.json"),
        command_prefix=sandbox.bwrap_command(
            writable=[workdir, runtime_dir],
            readable=[Path(sys.prefix), Path(sys.base_prefix), PACKAGE_DIR, kit_data_dir()],
            hidden=hidden,
        ),
    )
    # A signal would reach bwrap, not the kernel: interrupt with a message.
    manager.kernel_spec.interrupt_mode = "message"
    return manager


def run(notebook, workdir: Path, limits: Limits, final_cell=None, *,
        sandbox_mode: str = "none", hidden: list[Path] = ()) -> Execution:
    """Execute ``notebook`` in ``workdir`` (outputs are written into the cells),
    then ``final_cell`` in the same kernel. Cell errors do not stop the run.

    ``sandbox_mode`` is ``"bwrap"`` or ``"none"`` (see :mod:`sandbox`);
    ``hidden`` paths are invisible to a sandboxed kernel.
    """
    execution = Execution()
    client = LimitedClient(
        notebook,
        timeout=limits.cell_timeout,
        startup_timeout=limits.startup_timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.max_output_bytes = int(limits.max_output_mib * 1024**2)
    runtime_dir = Path(tempfile.mkdtemp(prefix="ag-kernel-"))
    env = {
        **os.environ, **KERNEL_ENV,
        # Configuration caches must be writable even when HOME is read-only.
        "MPLCONFIGDIR": str(workdir / ".config" / "matplotlib"),
        "IPYTHONDIR": str(workdir / ".config" / "ipython"),
    }
    started = time.perf_counter()
    # The kernel's own stdout/stderr (not cell outputs) go to a log beside the
    # executed notebook rather than onto the grader's terminal.
    with open(workdir / "kernel.log", "wb") as kernel_log:
        try:
            client.km = _kernel_manager(sandbox_mode, runtime_dir, workdir, list(hidden))
            client.start_new_kernel(env=env, stdout=kernel_log, stderr=kernel_log)
            client.start_new_kernel_client()
        except Exception as exc:
            if client.km is not None and client.km.has_kernel:
                run_sync(client.km.shutdown_kernel)(now=True)
            raise KernelStartError(
                f"Could not start a python3 Jupyter kernel within {limits.startup_timeout} s "
                f"({type(exc).__name__}: {exc}). Check that ipykernel is installed in the "
                "grader's environment; the kernel's log is in " + str(workdir / "kernel.log")
            ) from exc
        execution.timings["kernel_start"] = time.perf_counter() - started
        watchdog = Watchdog(client.km.provisioner.process.pid, limits)
        watchdog.start()
        try:
            with client.setup_kernel():
                _run_cells(client, notebook, limits, final_cell, execution, watchdog)
        finally:
            watchdog.stop()
            shutil.rmtree(runtime_dir, ignore_errors=True)
    if watchdog.reason:
        execution.notes.insert(0, watchdog.reason[0].upper() + watchdog.reason[1:])
    if client.output_truncated:
        execution.notes.append(
            f"Your notebook printed more than the output limit of {limits.max_output_mib:g} MiB; "
            "the rest of its output was dropped."
        )
    nbformat.write(notebook, workdir / "executed.ipynb")
    return execution


def _run_cells(client, notebook, limits: Limits, final_cell, execution: Execution,
               watchdog: Watchdog) -> None:
    started = time.perf_counter()
    try:
        for index, cell in enumerate(notebook.cells):
            remaining = limits.notebook_timeout - (time.perf_counter() - started)
            if remaining <= 0:
                execution.notes.append(
                    f"The notebook ran longer than its time budget of {limits.notebook_timeout} s; "
                    f"cells from cell {index + 1} on were not run."
                )
                break
            client.timeout = max(1, int(min(limits.cell_timeout, remaining)))
            client.timed_out = False
            watchdog.deadline = time.monotonic() + client.timeout + Watchdog.GRACE
            client.execute_cell(cell, index)
            timeout = client.timeout if client.timed_out else None
            note = _error_note(cell, index, timeout) if cell.cell_type == "code" else None
            if note:
                execution.notes.append(note)
        execution.timings["execute"] = time.perf_counter() - started
        if final_cell is not None:
            started = time.perf_counter()
            client.timeout = limits.cell_timeout
            watchdog.deadline = time.monotonic() + client.timeout + Watchdog.GRACE
            notebook.cells.append(final_cell)
            client.execute_cell(final_cell, len(notebook.cells) - 1)
            execution.timings["export"] = time.perf_counter() - started
    except DeadKernelError:
        execution.kernel_died = True
        execution.notes.append(
            "The kernel died while running your notebook (for example os._exit, a "
            "crash in native code or running out of memory); later cells did not run."
        )
