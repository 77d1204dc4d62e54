"""A student's self-check: run a notebook top to bottom and say which cells fail.

This is what the student sees before submitting: the public self-check cells
of the release (shapes, types), run in a fresh kernel exactly as saved. It
needs no hidden suite, so it works from the student wheel and in a student's
own CI. It grades nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import nbclient

from autograder.engine.prepare import grade_id, read_submission


@dataclass
class CellProblem:
    index: int
    """The cell's position, counting from 1 as Jupyter users count."""
    name: str
    """The cell's nbgrader grade_id, or ``cell N`` when it has none."""
    error: str


@dataclass
class SelfCheck:
    notebook: Path
    cells_run: int = 0
    problems: list[CellProblem] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.passed:
            return f"{self.notebook}: all {self.cells_run} code cells ran without errors."
        lines = [f"{self.notebook}: {len(self.problems)} cell(s) raised an error:"]
        for problem in self.problems:
            lines.append(f"  cell {problem.index} ({problem.name}): {problem.error}")
        lines.append("Fix the first one first: later errors often follow from it.")
        return "\n".join(lines)


def self_check(notebook_path: Path, *, cell_timeout: int = 600) -> SelfCheck:
    """Run every cell of ``notebook_path`` in its own folder, going on past
    errors, and collect the error each failing cell raised. A file that is
    not a notebook raises :class:`~autograder.engine.prepare.SubmissionError`."""
    notebook_path = Path(notebook_path)
    notebook = read_submission(notebook_path)
    # A cell past its timeout is interrupted and reported like any failing cell.
    nbclient.NotebookClient(
        notebook, timeout=cell_timeout, allow_errors=True, interrupt_on_timeout=True,
        kernel_name="python3", resources={"metadata": {"path": str(notebook_path.resolve().parent)}},
    ).execute(env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    report = SelfCheck(notebook_path)
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        report.cells_run += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                name = grade_id(cell) or f"cell {index}"
                message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
                report.problems.append(CellProblem(index, name, message[:500]))
    return report

