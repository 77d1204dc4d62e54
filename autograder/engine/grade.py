"""Grade one submission: prepare, execute, export, evaluate, record."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from autograder.course import PACKAGE_DIR, SUITES_DIR, Assignment
from autograder.engine import evaluate, execute, export, prepare, record, sandbox
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


def _keep_feedback(assignment: Assignment, artifacts_dir: Path, feedback_dir: Path) -> dict[str, float]:
    """Keep the declared training histories beside the suite's measurements
    and return the suite's metrics.

    A history comes from the kernel's directory, so it is read as a plain file
    only (never through a link), validated, and written anew; one that fails
    is left out and the report says no history is available. Histories are
    drawn, never scored.
    """
    from autograder.feedback.report import UnusableFile, read_history

    feedback_dir.mkdir(parents=True, exist_ok=True)
    for name, kind in assignment.artifacts.items():
        if kind != "history":
            continue
        try:
            history = read_history(artifacts_dir / f"{name}.history.json")
        except UnusableFile:
            continue
        record.write_atomic(feedback_dir / f"{name}.history.json", json.dumps(history))
    metrics_file = feedback_dir / "metrics.json"
    return json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}


def can_hide(path: Path) -> bool:
    """Whether a sandboxed kernel can do without ``path``: not when it holds
    the kit or the Python that runs the kernel."""
    path = Path(path).resolve()
    needed = [PACKAGE_DIR, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    return not any(p == path or path in p.parents for p in needed)


def hidden_paths(assignment: Assignment, submission: Path, also: Sequence[Path] = ()) -> list[Path]:
    """What a sandboxed kernel must not see: hidden suites, solutions, the
    course's history and records, the folder of submissions this one came
    from (or only the submission, when that folder also holds the kit or
    Python itself) and the paths in ``also`` (a batch's other submissions and
    results)."""
    course = assignment.course_dir
    # The course directory as a whole (tests, docs, build output), then inside it
    # what stays hidden even where the kit is bound back (see sandbox.bwrap_command).
    paths = [course, SUITES_DIR, course / "solutions", course / ".git", course / "gradebook.db",
             course / "submitted", course / "autograded", course / "feedback"]
    folder = submission.resolve().parent
    paths.append(folder if can_hide(folder) else submission.resolve())
    return paths + [Path(p).resolve() for p in also]


def grade_submission(submission: Path, assignment: Assignment, *, workdir: Path | None = None,
                     sandbox_mode: str = "auto", feedback_dir: Path | None = None,
                     also_hidden: Sequence[Path] = ()) -> GradingResult:
    """Grade ``submission`` against ``assignment``'s hidden suite.

    Runs the five stages in order. ``workdir`` keeps the executed notebook and
    the exported artifacts for inspection; by default a temporary directory is
    used and removed. Raises only when grading itself cannot run
    (:class:`~autograder.engine.evaluate.EvaluationError`); anything wrong with
    the submission is reported in the result. ``sandbox_mode`` is ``auto``
    (bwrap where it works), ``bwrap`` or ``none`` (see
    :mod:`autograder.engine.sandbox`). ``feedback_dir`` receives what a
    feedback report draws: the training history and what the suite measured.
    ``also_hidden`` paths are kept from the kernel besides :func:`hidden_paths`.
    """
    started = time.perf_counter()
    mode, warning = sandbox.choose(sandbox_mode)
    submission = Path(submission)
    try:
        student_nb = prepare.read_submission(submission)
        prepare.check_assignment(student_nb, assignment.release_notebook)
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
            sandbox_mode=mode, hidden=hidden_paths(assignment, submission, also_hidden),
        )
        result.timings.update(ran.timings)
        result.notes.extend(ran.notes)

        t = time.perf_counter()
        result.tests = evaluate.run_suite(
            assignment.suite_dir, artifacts_dir, workdir / "report.json",
            timeout=assignment.limits.evaluation_timeout, feedback_dir=feedback_dir,
        )
        result.timings["evaluate"] = time.perf_counter() - t
        if feedback_dir is not None:
            result.metrics = _keep_feedback(assignment, artifacts_dir, Path(feedback_dir))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result.execution_time = time.perf_counter() - started
    return result
