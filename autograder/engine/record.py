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
import shutil
from dataclasses import dataclass
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


FEEDBACK_DIR = "feedback"
REPORT_FILE = "report.html"
TIMESTAMP_FILE = "timestamp.txt"
"""nbgrader's record of when a submission was made, beside the collected notebook."""


def submission_timestamp(notebook: Path) -> str:
    """The text of the ``timestamp.txt`` beside ``notebook`` (stripped), or
    ``""`` where there is none. Like ``nbgrader autograde``, the kit takes it as
    nbgrader's exchange delivered it; ``autograder export --gradebook`` parses it."""
    path = Path(notebook).parent / TIMESTAMP_FILE
    if not path.is_file() or path.is_symlink():
        return ""
    with path.open("rb") as text:  # the student's side wrote it: read a date's worth
        return text.read(200).decode(errors="replace").strip()


@dataclass
class Record:
    """What one graded submission leaves in its output folder, held in memory
    so that it can travel (a cluster's worker returns it, the client writes it)."""

    results: dict
    """``results.json``'s content, with its :func:`fingerprint`."""
    report_html: str
    feedback: dict[str, bytes] | None = None
    """``feedback/``'s files by path inside it; ``None`` when the grading
    wrote them in place already."""

    @classmethod
    def read(cls, out_dir: Path) -> "Record":
        """The record an ``autograder grade NOTEBOOK --output-dir OUT_DIR`` left."""
        out_dir = Path(out_dir)
        feedback = out_dir / FEEDBACK_DIR
        return cls(
            results=json.loads((out_dir / RESULTS_FILE).read_text()),
            report_html=(out_dir / REPORT_FILE).read_text(),
            feedback={p.relative_to(feedback).as_posix(): p.read_bytes()
                      for p in sorted(feedback.rglob("*")) if p.is_file()},
        )

    def write(self, out_dir: Path) -> None:
        """Write the record into ``out_dir``: ``results.json`` is removed
        first and written last, atomically, so the folder holds a finished
        grading or none (a rerun grades it again), never a mix of two."""
        out_dir = Path(out_dir)
        (out_dir / RESULTS_FILE).unlink(missing_ok=True)
        if self.feedback is not None:
            shutil.rmtree(out_dir / FEEDBACK_DIR, ignore_errors=True)
            for name, data in self.feedback.items():
                write_atomic(out_dir / FEEDBACK_DIR / name, data)
        write_atomic(out_dir / REPORT_FILE, self.report_html)
        write_json(self.results, out_dir / RESULTS_FILE)


def render_record(result: GradingResult, *, submission: Path, assignment: Assignment,
                  feedback_dir: Path | None) -> Record:
    """The record of ``result``: its report (drawn from ``feedback_dir``) and
    its results with the submission's fingerprint."""
    from autograder.feedback.report import render_report

    return Record({**result.to_dict(), "fingerprint": fingerprint(submission, assignment)},
                  render_report(result, feedback_dir))


def record_submission(result: GradingResult, out_dir: Path, *, submission: Path,
                      assignment: Assignment, feedback_dir: Path) -> None:
    """Write ``out_dir/report.html`` from ``result`` and ``feedback_dir``,
    then ``out_dir/results.json`` with the submission's fingerprint."""
    render_record(result, submission=submission, assignment=assignment,
                  feedback_dir=feedback_dir).write(out_dir)


def grade_and_record(submission: Path, assignment: Assignment, out_dir: Path, *,
                     student: str = "", **grading) -> GradingResult:
    """Grade ``submission`` (``grading``: the keywords of
    :func:`~autograder.engine.grade.grade_submission`) and write its record
    into ``out_dir``: ``feedback/``, ``report.html``, then ``results.json``."""
    from autograder.engine.grade import grade_submission

    feedback_dir = Path(out_dir) / "feedback"
    shutil.rmtree(feedback_dir, ignore_errors=True)  # nothing left from an earlier version
    result = grade_submission(submission, assignment, feedback_dir=feedback_dir, **grading)
    result.student = student
    result.submitted_at = submission_timestamp(submission)
    record_submission(result, Path(out_dir), submission=Path(submission), assignment=assignment,
                      feedback_dir=feedback_dir)
    return result


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
