"""Grade one submission: prepare, execute, export, evaluate, record."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from autograder.artifacts import KINDS, RUNTIME_LOG, KernelRuntime, UnusableFile, read_history, read_runtime
from autograder.atomic import write_atomic
from autograder.course import PACKAGE_DIR, SUITES_DIR, Assignment, grading_backend
from autograder.datasets import DatasetError, served
from autograder.engine import evaluate, execute, export, gpu, prepare, sandbox, untrusted
from autograder.errors import StopGrading
from autograder.results import CheckResult, GradingResult, Status


class GraderFault(StopGrading):
    """The grader's side failed (its data, its work directory), not the
    submission: the submission is not graded and nothing is recorded, so a
    rerun grades it once the fault is fixed."""


WORKDIR_MARK = ".autograder-workdir"
"""Left in a ``--workdir`` the grader made, so that a rerun may empty it."""
INTEGRITY_MESSAGE = (
    "Your notebook could not be graded: while it ran, the grader found its own files changed. "
    "Please see your instructor."
)
DATASET_ERROR = re.compile(r"Dataset '([\w-]+)'")


def _checks_all_zero(plan, status: Status, message: str) -> list[CheckResult]:
    return [CheckResult(p.name, 0.0, p.points, status, message, p.description) for p in plan]


def _fresh_workdir(workdir: Path | None) -> tuple[Path, bool]:
    """The work directory for one grading, empty, and whether to keep it.

    A given ``workdir`` is used only if it is new, empty, or one the grader
    made before (:data:`WORKDIR_MARK`), which is then emptied without
    following any link a kernel left there; anything else is refused, so no
    one's files are deleted and no planted link redirects a write."""
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="autograder-")), False
    workdir = Path(workdir)
    if workdir.is_symlink() or (workdir.exists() and not workdir.is_dir()):
        raise GraderFault(f"--workdir {workdir} is not a folder; give a new or empty folder.")
    workdir.mkdir(parents=True, exist_ok=True)
    entries = os.listdir(workdir)
    if entries and WORKDIR_MARK not in entries:
        raise GraderFault(
            f"--workdir {workdir} is not empty and was not made by the grader; give a new or "
            "empty folder (a folder used by an earlier grading is emptied and reused)."
        )
    for name in entries:
        path = workdir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # rmtree never follows links
        else:
            path.unlink()
    untrusted.replace_file(workdir / WORKDIR_MARK, "Made by the autograder; emptied on reuse.\n")
    return workdir, True


def _grader_fault_in(assignment: Assignment, ran: execute.Execution) -> None:
    """A cell that failed because the data the grader served it is missing
    or corrupt is the grader's fault, not the student's."""
    for where, name, message in ran.errors:
        named = DATASET_ERROR.search(message)
        if name in ("DatasetNotFoundError", "DatasetCorruptError") and named and \
                named.group(1).replace("-", "_") in assignment.datasets:
            raise GraderFault(
                f"The student's {where} could not load the dataset {named.group(1)!r} that the "
                f"grader served ({name}: {message[:600]}). Check the data directory "
                "(AUTOGRADER_DATA_DIR) with `autograder doctor`, then grade again."
            )


def _keep_feedback(assignment: Assignment, artifacts_dir: Path, feedback_dir: Path) -> dict[str, float]:
    """Keep the declared training histories beside the suite's measurements
    and return the suite's metrics.

    A history comes from the kernel's directory, so it is read as a plain file
    only (never through a link), validated, and written anew; one that fails
    is left out and the report says no history is available. Histories are
    drawn, never scored.
    """
    feedback_dir.mkdir(parents=True, exist_ok=True)
    for name, kind in assignment.artifacts.items():
        if kind != "history":
            continue
        try:
            history = read_history(artifacts_dir / f"{name}{KINDS['history'].suffix}")
        except UnusableFile:
            continue
        write_atomic(feedback_dir / f"{name}{KINDS['history'].suffix}", json.dumps(history))
    metrics_file = feedback_dir / "metrics.json"
    return json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}


def can_hide(path: Path) -> bool:
    """Whether a sandboxed kernel can do without ``path``: not when it holds
    the kit or the Python that runs the kernel."""
    path = Path(path).resolve()
    needed = [PACKAGE_DIR, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    return not any(p == path or path in p.parents for p in needed)


def hidden_paths(assignment: Assignment, submission: Path, also: Sequence[Path] = ()) -> list[Path]:
    """What a sandboxed kernel must not see even where it lies inside what
    the sandbox binds in (the sandbox shows nothing else; see
    :func:`sandbox.bwrap_command`): hidden suites, solutions, the course's
    history and records, the folder of submissions this one came from (or
    only the submission, when that folder also holds the kit or Python
    itself) and the paths in ``also`` (a batch's other submissions and
    results)."""
    course = assignment.course_dir
    paths = [course, SUITES_DIR, course / "solutions", course / ".git", course / "gradebook.db",
             course / "submitted", course / "autograded", course / "feedback"]
    folder = submission.resolve().parent
    paths.append(folder if can_hide(folder) else submission.resolve())
    return paths + [Path(p).resolve() for p in also]


def sandbox_description(mode: str, requested: str) -> str:
    """What confined the kernel, for the record: ``bwrap``, or ``none`` and why."""
    if mode == "bwrap":
        return "bwrap"
    if requested == "none":
        return "none (--sandbox none was requested)"
    return f"none ({sandbox.bwrap_problem()})"


def _allotment(allotted: gpu.Gpu | None, memory_fraction: float) -> str:
    if allotted is None:
        return "CPU"
    return f"GPU {allotted.index} ({allotted.name}, {memory_fraction:.0%} of its memory)"


def _report_device(result: GradingResult, runtime: KernelRuntime,
                   allotted: gpu.Gpu | None) -> None:
    """Say in ``result`` what the kernel reports it trained on: its backend,
    and ``CPU`` instead of the allotted GPU when it did not use it, with a
    note for the staff (a CPU build of the backend, or a GPU it cannot open,
    makes training slow without failing)."""
    result.backend = runtime.backend or result.backend
    if allotted is not None and runtime.device == "cpu":
        result.device = f"CPU (GPU {allotted.index} was allotted but not used)"
        result.staff_notes.append(
            f"DEVICE: GPU {allotted.index} was allotted to the kernel, but its Keras backend "
            f"({result.backend}) computed on the CPU. Is a GPU build of the backend installed? "
            "`autograder doctor` checks that the backend sees the GPU.")


class Grading:
    """One submission's grading (see :func:`grade_submission`) in two steps,
    so that its kernel can start before its turn.

    :meth:`open` does all a kernel needs: the hidden suite's trusted copy,
    the data view, a fresh work directory, the prepared notebook.
    :meth:`start_kernel_ahead` then starts the kernel. :meth:`finish` runs
    the notebook, verifies the trusted copy and evaluates; ``executed`` is
    called once the notebook has run and its kernel is gone. :meth:`close`
    (or leaving the ``with`` block, which opens it) removes all it holds, a
    kernel never used included. The time between the two steps is not
    counted in the result's ``execution_time``.
    """

    def __init__(self, submission: Path, assignment: Assignment, *, workdir: Path | None = None,
                 sandbox_mode: str = "auto", also_hidden: Sequence[Path] = (),
                 allotted: gpu.Gpu | None = None, gpu_memory_fraction: float = 1.0,
                 executed: Callable[[], None] | None = None):
        self.submission = Path(submission)
        self.assignment = assignment
        self.workdir = workdir
        self.sandbox_mode = sandbox_mode
        self.also_hidden = also_hidden
        self.allotted = allotted
        self.gpu_memory_fraction = gpu_memory_fraction
        self.executed = executed
        self._held = ExitStack()
        self._seconds = 0.0
        """Working time so far: the grading's ``execution_time`` without waits."""
        self._refused: str | None = None
        """Why the submission cannot be run (not a notebook of the assignment)."""

    def __enter__(self) -> "Grading":
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> "Grading":
        """Everything the kernel needs; all of it is removed again when opening fails."""
        started = time.perf_counter()
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        self._seconds += time.perf_counter() - started
        return self

    def _open(self) -> None:
        assignment, submission = self.assignment, self.submission
        self.mode, warning = sandbox.choose(self.sandbox_mode)
        self.result = GradingResult(assignment.name, str(submission),
                                    sandbox=sandbox_description(self.mode, self.sandbox_mode),
                                    backend=grading_backend(),
                                    device=_allotment(self.allotted, self.gpu_memory_fraction))
        if warning:
            self.result.staff_notes.append(warning)
        self.suite_env = gpu.evaluator_env(limits=assignment.limits, gpu=self.allotted,
                                           memory_fraction=self.gpu_memory_fraction)
        # A warm evaluator fixes its device when it imports the backend: the CPU only.
        warm_env = self.suite_env if self.suite_env == gpu.CPU_ONLY_ENV else None
        self.suite = self._held.enter_context(
            evaluate.TrustedSuite(assignment.suite_dir, warm_env=warm_env))
        self.private = Path(self._held.enter_context(
            tempfile.TemporaryDirectory(prefix="autograder-private-")))
        self.kernels = None
        try:
            student_nb = prepare.read_submission(submission)
            prepare.check_assignment(student_nb, assignment.release_notebook)
            self.result.alias = prepare.declared_alias(student_nb)
        except prepare.SubmissionError as exc:
            self._refused = str(exc)
            return

        self.seed = served.course_holdout_seed(assignment.course_dir)
        view = self.private / "data"
        try:
            served.build_view(assignment.datasets, view, holdout_seed=self.seed)
        except DatasetError as exc:
            raise GraderFault(f"The grader's data for {assignment.name!r} is not usable: {exc}") from exc
        self.workdir, keep = _fresh_workdir(self.workdir)
        if not keep:
            self._held.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        t = time.perf_counter()
        self.notebook, notes = prepare.prepare(
            assignment.source_notebook, student_nb, assignment.release_notebook
        )
        self.result.notes.extend(notes)
        for data_file in assignment.release_files():
            untrusted.replace_file(self.workdir / data_file.name, data_file.read_bytes())
        self.result.timings["prepare"] = time.perf_counter() - t
        self.kernels = execute.Kernels(
            self.workdir, assignment.limits, sandbox_mode=self.mode,
            hidden=hidden_paths(assignment, submission, self.also_hidden), data_view=view,
            allotted=self.allotted, gpu_memory_fraction=self.gpu_memory_fraction,
        )
        self._held.callback(self.kernels.close)

    def start_kernel_ahead(self) -> None:
        """Start the kernel now. One that cannot start is no fault yet: the
        notebook's run starts its own and reports why that fails."""
        if self.kernels is None:
            return
        started = time.perf_counter()
        try:
            self.kernels.start_ahead()
        except execute.KernelStartError:
            pass
        self._seconds += time.perf_counter() - started

    def finish(self, feedback_dir: Path | None = None) -> GradingResult:
        """Run, verify, evaluate: the result (see :func:`grade_submission`)."""
        started = time.perf_counter()
        try:
            self._finish(feedback_dir)
        finally:
            self.result.execution_time = self._seconds + time.perf_counter() - started
        return self.result

    def _finish(self, feedback_dir: Path | None) -> None:
        assignment, result, suite = self.assignment, self.result, self.suite
        if self._refused is not None:
            result.tests = _checks_all_zero(suite.plan, Status.NOT_ATTEMPTED, self._refused)
            result.notes.append(self._refused)
            return
        artifacts_dir = self.workdir / "artifacts"
        ran = execute.run(
            self.notebook, self.workdir, assignment.limits,
            final_cell=export.export_cell(assignment.artifacts, artifacts_dir), kernels=self.kernels,
        )
        if self.executed is not None:
            self.executed()
        result.timings.update(ran.timings)
        result.notes.extend(ran.notes)
        _grader_fault_in(assignment, ran)
        _report_device(result, read_runtime(artifacts_dir / RUNTIME_LOG), self.allotted)
        try:
            suite.verify()
        except evaluate.IntegrityError as exc:
            result.tests = _checks_all_zero(suite.plan, Status.ERROR, INTEGRITY_MESSAGE)
            result.staff_notes.append(f"INTEGRITY: {exc}")
            return

        t = time.perf_counter()
        feedback = Path(feedback_dir) if feedback_dir is not None else self.private / "feedback"
        seed_env = {served.HOLDOUT_SEED_ENV: str(self.seed)} if self.seed is not None else {}
        result.tests = suite.run(
            artifacts_dir, self.workdir / "report.json",
            timeout=assignment.limits.evaluation_timeout, feedback_dir=feedback,
            env={**self.suite_env, **seed_env},
        )
        result.timings["evaluate"] = time.perf_counter() - t
        result.metrics = _keep_feedback(assignment, artifacts_dir, feedback)

    def close(self) -> None:
        self._held.close()


def grade_submission(submission: Path, assignment: Assignment, *, workdir: Path | None = None,
                     sandbox_mode: str = "auto", feedback_dir: Path | None = None,
                     also_hidden: Sequence[Path] = (), allotted: gpu.Gpu | None = None,
                     gpu_memory_fraction: float = 1.0, opened: Grading | None = None) -> GradingResult:
    """Grade ``submission`` against ``assignment``'s hidden suite.

    Runs the stages in order: the hidden suite is copied and fingerprinted
    (:class:`~autograder.engine.evaluate.TrustedSuite`), the kernel's data
    view is built, the notebook is prepared, executed and its artifacts
    exported, the fingerprints are verified, and the suite's copy evaluates
    the artifacts. ``workdir`` keeps the executed notebook and the exported
    artifacts for inspection (it must be new, empty, or an earlier
    ``workdir``); by default a temporary directory is used and removed.
    ``sandbox_mode`` is ``auto`` (bwrap where it works), ``bwrap`` or
    ``none`` (see :mod:`autograder.engine.sandbox`). ``feedback_dir``
    receives what a feedback report draws: the training history and what the
    suite measured. ``also_hidden`` paths are kept from the kernel besides
    :func:`hidden_paths`. ``allotted`` is the GPU the kernel may use, at
    most ``gpu_memory_fraction`` of its memory (none: the CPU alone); the
    hidden suite runs on the CPU unless the assignment says otherwise.
    ``opened`` is this submission's :class:`Grading`, opened beforehand
    (its kernel perhaps started): it is finished with its own settings,
    which replace the keywords above but ``feedback_dir``, and its opener closes it.

    Anything wrong with the submission is reported in the result, whose
    maximum is always the assignment's. Raises when grading itself cannot
    run: :class:`GraderFault` (the grader's data or work directory),
    :class:`~autograder.engine.evaluate.EvaluationError` (a broken suite),
    :class:`~autograder.engine.execute.KernelStartError`.
    """
    if opened is not None:
        if opened.submission != Path(submission) or opened.assignment.name != assignment.name:
            raise ValueError(f"the grading opened for {opened.submission} cannot grade {submission}")
        return opened.finish(feedback_dir)
    with Grading(submission, assignment, workdir=workdir, sandbox_mode=sandbox_mode,
                 also_hidden=also_hidden, allotted=allotted,
                 gpu_memory_fraction=gpu_memory_fraction) as grading:
        return grading.finish(feedback_dir)
