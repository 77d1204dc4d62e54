"""Grade one submission: prepare, execute, export, evaluate, record."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from autograder.course import PACKAGE_DIR, SUITES_DIR, Assignment
from autograder.engine import evaluate, execute, export, prepare, sandbox
from autograder.results import CheckResult, GradingResult, Status


def _unreadable_result(assignment: Assignment, submission: Path, reason: str, started: float):
    """Every check scores 0 when the submission cannot even be read."""
    placeholder = GradingResult(assignment.name, str(submission))
    report = Path(tempfile.mkdtemp(prefix="autograder-empty-")) / "report.json"
    try:
        checks = evaluate.run_suite(
            assignment.suite_dir, report.parent / "no-artifacts", report,
            timeout=assignment.limits.evaluation_timeout,
        )
    finally:
        shutil.rmtree(report.parent, ignore_errors=True)
    placeholder.tests = [
        CheckResult(c.name, 0.0, c.max_score, Status.NOT_ATTEMPTED, reason, c.description)
        for c in checks
    ]
    placeholder.notes.append(reason)
    placeholder.execution_time = time.perf_counter() - started
    return placeholder


def hidden_paths(assignment: Assignment, submission: Path) -> list[Path]:
    """What a sandboxed kernel must not see: hidden suites, solutions, the
    course's history and records, and the folder of submissions this one came
    from (unless that folder also holds the kit or Python itself)."""
    course = assignment.course_dir
    paths = [SUITES_DIR, course / "solutions", course / ".git", course / "gradebook.db",
             course / "submitted", course / "autograded", course / "feedback"]
    folder = submission.resolve().parent
    needed = [PACKAGE_DIR, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    if any(p == folder or folder in p.parents for p in needed):
        paths.append(submission.resolve())
    else:
        paths.append(folder)
    return paths


def grade_submission(submission: Path, assignment: Assignment, *, workdir: Path | None = None,
                     sandbox_mode: str = "auto") -> GradingResult:
    """Grade ``submission`` against ``assignment``'s hidden suite.

    Runs the five stages in order. ``workdir`` keeps the executed notebook and
    the exported artifacts for inspection; by default a temporary directory is
    used and removed. Raises only when grading itself cannot run
    (:class:`~autograder.engine.evaluate.EvaluationError`); anything wrong with
    the submission is reported in the result. ``sandbox_mode`` is ``auto``
    (bwrap where it works), ``bwrap`` or ``none`` (see
    :mod:`autograder.engine.sandbox`).
    """
    started = time.perf_counter()
    mode, warning = sandbox.choose(sandbox_mode)
    submission = Path(submission)
    try:
        student_nb = prepare.read_submission(submission)
    except prepare.SubmissionError as exc:
        return _unreadable_result(assignment, submission, str(exc), started)

    keep = workdir is not None
    workdir = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix="autograder-"))
    workdir.mkdir(parents=True, exist_ok=True)
    result = GradingResult(assignment.name, str(submission))
    if warning:
        result.notes.append(warning)
    try:
        t = time.perf_counter()
        notebook, notes = prepare.prepare(
            assignment.source_notebook, student_nb, assignment.release_notebook
        )
        result.notes.extend(notes)
        for data_file in assignment.release_files():
            shutil.copy(data_file, workdir / data_file.name)
        result.timings["prepare"] = time.perf_counter() - t

        artifacts_dir = workdir / "artifacts"
        ran = execute.run(
            notebook, workdir, assignment.limits,
            final_cell=export.export_cell(assignment.artifacts, artifacts_dir),
            sandbox_mode=mode, hidden=hidden_paths(assignment, submission),
        )
        result.timings.update(ran.timings)
        result.notes.extend(ran.notes)

        t = time.perf_counter()
        result.tests = evaluate.run_suite(
            assignment.suite_dir, artifacts_dir, workdir / "report.json",
            timeout=assignment.limits.evaluation_timeout,
        )
        result.timings["evaluate"] = time.perf_counter() - t
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result.execution_time = time.perf_counter() - started
    return result
