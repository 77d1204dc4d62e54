"""Stage 5, record: results on disk and a readable summary on the terminal."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from autograder.results import GradingResult, Status

_MARK = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.ERROR: "ERROR",
    Status.NOT_ATTEMPTED: "NOT ATTEMPTED",
}


def write_json(result: GradingResult, path: Path) -> None:
    """Write ``results.json`` atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(result.to_dict(), f, indent=2)
    os.replace(tmp, path)


def _points(value: float) -> str:
    return f"{value:g}"


def summary(result: GradingResult) -> str:
    """A plain-text report: one line per check, its message indented below."""
    lines = [f"{result.assignment}: {result.submission}"]
    for check in result.tests:
        lines.append(
            f"  [{_MARK[check.status]:>13}] {check.name}  "
            f"{_points(check.score)}/{_points(check.max_score)}"
        )
        if check.output:
            lines.extend(f"      {line}" for line in check.output.splitlines())
    for note in result.notes:
        lines.append(f"  note: {note}")
    lines.append(
        f"  score {_points(result.score)}/{_points(result.max_score)} "
        f"in {result.execution_time:.1f} s"
    )
    return "\n".join(lines)
