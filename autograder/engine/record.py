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


RESULTS_FILE = "results.json"
"""One graded submission's results in an output folder: ``OUT/<student>/results.json``."""


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder
    and :func:`os.replace`: a reader (or a rerun after the writer was killed)
    sees the old file or the new one, never half of one. Missing parent
    folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(data: GradingResult | dict, path: Path) -> None:
    """Write a result (or any JSON-able dict) to ``path`` atomically."""
    if isinstance(data, GradingResult):
        data = data.to_dict()
    write_atomic(path, json.dumps(data, indent=2))


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
    if result.sandbox:
        lines.append(f"  sandbox: {result.sandbox}")
    lines.append(
        f"  score {_points(result.score)}/{_points(result.max_score)} "
        f"in {result.execution_time:.1f} s"
    )
    return "\n".join(lines)
