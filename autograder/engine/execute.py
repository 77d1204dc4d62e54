"""Stage 2, execute: run the prepared notebook in a fresh kernel with nbclient."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from autograder.course import Limits
from autograder.engine.prepare import grade_id

# TensorFlow's C++ start-up chatter goes to the kernel's stderr; keep the
# executed notebook readable.
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


class KernelStartError(Exception):
    """No kernel could be started: a problem of the grading machine, not the submission."""


@dataclass
class Execution:
    """What happened when the notebook ran."""

    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kernel_died: bool = False


def _error_note(cell, index: int, limits: Limits) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            where = f"cell {grade_id(cell)!r}" if grade_id(cell) else f"cell {index + 1}"
            if output.get("ename") == "CellTimeoutError":
                return f"{where} ran longer than the {limits.cell_timeout} s limit and was interrupted."
            return f"{where} raised {output.get('ename')}: {str(output.get('evalue'))[:200]}"
    return None


def run(notebook, workdir: Path, limits: Limits, final_cell=None) -> Execution:
    """Execute ``notebook`` in ``workdir`` (outputs are written into the cells),
    then ``final_cell`` in the same kernel. Cell errors do not stop the run."""
    execution = Execution()
    client = NotebookClient(
        notebook,
        timeout=limits.cell_timeout,
        startup_timeout=limits.startup_timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than {limits.cell_timeout} s",
            "traceback": [],
        },
        resources={"metadata": {"path": str(workdir)}},
    )
    started = time.perf_counter()
    # The kernel's own stdout/stderr (not cell outputs) go to a log beside the
    # executed notebook rather than onto the grader's terminal.
    with open(workdir / "kernel.log", "wb") as kernel_log:
        try:
            client.km = client.create_kernel_manager()
            client.start_new_kernel(
                env={**os.environ, **KERNEL_ENV}, stdout=kernel_log, stderr=kernel_log
            )
            client.start_new_kernel_client()
        except Exception as exc:
            if client.km is not None and client.km.has_kernel:
                client.km.shutdown_kernel(now=True)
            raise KernelStartError(
                f"Could not start a python3 Jupyter kernel within {limits.startup_timeout} s "
                f"({type(exc).__name__}: {exc}). Check that ipykernel is installed in the "
                "grader's environment; the kernel's log is in " + str(workdir / "kernel.log")
            ) from exc
        execution.timings["kernel_start"] = time.perf_counter() - started
        with client.setup_kernel():
            _run_cells(client, notebook, limits, final_cell, execution)
    nbformat.write(notebook, workdir / "executed.ipynb")
    return execution


def _run_cells(client, notebook, limits: Limits, final_cell, execution: Execution) -> None:
    started = time.perf_counter()
    try:
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
            note = _error_note(cell, index, limits) if cell.cell_type == "code" else None
            if note:
                execution.notes.append(note)
        execution.timings["execute"] = time.perf_counter() - started
        if final_cell is not None:
            started = time.perf_counter()
            notebook.cells.append(final_cell)
            client.execute_cell(final_cell, len(notebook.cells) - 1)
            execution.timings["export"] = time.perf_counter() - started
    except DeadKernelError:
        execution.kernel_died = True
        execution.notes.append(
            "The kernel died while running your notebook (for example os._exit, a "
            "crash in native code or running out of memory); later cells did not run."
        )
