"""Stage 5, record: what one graded submission leaves in its output folder,
and a readable summary on the terminal.

An output folder holds ``feedback/`` (what the suite measured, the history),
``report.html`` and, written last and atomically, ``results.json`` with a
:func:`fingerprint`, so that a ``results.json`` on disk always means a
finished grading of that notebook with that suite (batch reruns rely on it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from autograder import __version__
from autograder.atomic import write_atomic
from autograder.course import Assignment
from autograder.results import RESULTS_FILE, GradingResult, Status

_MARK = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.ERROR: "ERROR",
    Status.NOT_ATTEMPTED: "NOT ATTEMPTED",
}


def _digest_files(digest, paths) -> None:
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())


def suite_version(assignment: Assignment) -> str:
    """Changes whenever what decides a grade changes: the hidden suite, its
    ``assignment.toml``, the source and release notebooks, the limits, the kit."""
    digest = hashlib.sha256(f"{__version__}\0{assignment.limits}".encode())
    _digest_files(digest, sorted(p for p in assignment.suite_dir.rglob("*")
                                 if p.is_file() and "__pycache__" not in p.parts))
    _digest_files(digest, [assignment.source_notebook, assignment.release_notebook,
                           *assignment.release_files()])
    return digest.hexdigest()[:16]


def fingerprint(submission: Path, assignment: Assignment) -> dict:
    """What ``results.json`` records so a rerun can tell it is still current."""
    return {
        "submission_sha256": hashlib.sha256(Path(submission).read_bytes()).hexdigest(),
        "suite_version": suite_version(assignment),
    }


def record_submission(result: GradingResult, out_dir: Path, *, submission: Path,
                      assignment: Assignment, feedback_dir: Path) -> None:
    """Write ``out_dir/report.html`` from ``result`` and ``feedback_dir``,
    then ``out_dir/results.json`` with the submission's fingerprint."""
    from autograder.feedback.report import write_report

    write_report(Path(out_dir) / "report.html", result, feedback_dir)
    write_json({**result.to_dict(), "fingerprint": fingerprint(submission, assignment)},
               Path(out_dir) / RESULTS_FILE)


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
        lines.append(f"  sandbox: {result.sandbox}; backend: {result.backend}; device: {result.device}")
    lines.append(
        f"  score {_points(result.score)}/{_points(result.max_score)} "
        f"in {result.execution_time:.1f} s"
    )
    return "\n".join(lines)
