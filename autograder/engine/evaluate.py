"""Stage 4, evaluate: run the hidden suite on the exported artifacts.

The suite runs in a separate Python process that never executes student
code: it loads the artifacts with safe loaders and recomputes every metric on
data it loads itself. That process never reads the kernel's work directory
either: the artifacts are first copied, regular files only and within size
limits, into a private directory, which is also its working directory, and
Python starts with ``-P`` so that no module planted beside the artifacts (a
``pytest.py``, a ``numpy.py``) can shadow the ones it imports.

Nor does it run anything the kernel could have changed: :class:`TrustedSuite`
copies the hidden suite into a private directory before the kernel starts,
fingerprints that copy and the kit's own code, and collects the suite's
checks and points (the *plan*: the assignment's maximum score). After the
kernel, both fingerprints must be unchanged, and the run must report exactly
the planned checks, or the submission is not graded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autograder import artifacts as artifact_files
from autograder.course import PACKAGE_DIR
from autograder.datasets._files import kit_data_dir
from autograder.engine import untrusted
from autograder.engine.warm import WarmEvaluator, WarmEvaluatorError, discard
from autograder.engine.warm import evaluator as warm_evaluator
from autograder.errors import StopGrading
from autograder.results import CheckResult, Status



class EvaluationError(StopGrading):
    """The hidden suite itself could not run (a broken suite, not a bad submission)."""


class IntegrityError(Exception):
    """The hidden suite or the kit's code changed while the kernel ran."""


@dataclass(frozen=True)
class PlannedCheck:
    """One check the assignment's suite declares, with its points."""

    name: str
    points: float
    description: str = ""


def _pytest_command(suite_dir: Path, *options: str) -> list[str]:
    # -P: the working directory does not go on sys.path.
    return [sys.executable, "-P", "-m", "pytest", *_pytest_args(suite_dir, *options)]


def _pytest_args(suite_dir: Path, *options: str) -> list[str]:
    return [
        str(suite_dir),
        "-p", "autograder.suite_plugin",
        "-p", "no:cacheprovider",
        "--rootdir", str(suite_dir),
        "--confcutdir", str(suite_dir),
        "-c", os.devnull,
        "-q", "--no-header", "-rN", "--tb=no",
        *options,
    ]


def _suite_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # Only the suite plugin is loaded (-p): a pytest plugin that happens to be
    # installed beside the grader (anyio's comes with Jupyter) has no business
    # in the trusted process, and importing it cost a third of a small suite's run.
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            **(extra or {})}


def run_suite(suite_dir: Path, artifacts_dir: Path, report_path: Path, *,
              timeout: int, feedback_dir: Path | None = None,
              plan: list[PlannedCheck] | None = None,
              env: Mapping[str, str] | None = None,
              warm: WarmEvaluator | None = None) -> list[CheckResult]:
    """Run every check of the suite in ``suite_dir``; one result per check.

    With ``feedback_dir``, what the checks measured for feedback (metrics,
    predictions on held-out data) is kept there. ``artifacts_dir`` is
    untrusted (the student's kernel wrote it): the suite reads a private copy
    of it (see :func:`_private_copy`), and a copy of its report is left at
    ``report_path``. ``env`` adds to the suite process's environment.

    With a ``plan``, the run must report exactly the planned checks (else
    :class:`EvaluationError`), and a suite that runs past ``timeout`` costs
    the submission the checks it had not finished, each with a message: the
    student's model was too slow to evaluate. Without one, a timeout is an
    :class:`EvaluationError`.

    A ``warm`` evaluator (:mod:`autograder.engine.warm`) runs the suite in a
    child of its zygote, with the same environment. Unless that run ends
    with a report, or runs out of time after judging some checks, the zygote
    is discarded and the suite runs cold: a fault of the zygote must not
    cost the student anything but time.
    """
    private, artifacts, report = _private_copy(Path(artifacts_dir))
    options = ["--artifacts-dir", str(artifacts), "--grading-report", str(report)]
    if feedback_dir is not None:
        options += ["--feedback-dir", str(feedback_dir)]
    returncode, output, timed_out = None, "", False
    if warm is not None:
        try:
            returncode, output = warm.run(_pytest_args(suite_dir, *options), cwd=private,
                                          env=_suite_env(env), timeout=timeout)
            stalled = returncode is None
        except WarmEvaluatorError:
            stalled = False
        judged = _read_report(report)
        if stalled and judged:
            timed_out = True  # it judged checks, then ran out of time: the model is slow, not the zygote
        elif returncode not in (0, 1) or judged is None:
            discard(warm)
            returncode = None
    if returncode is None and not timed_out:
        try:
            completed = subprocess.run(
                _pytest_command(suite_dir, *options), capture_output=True, text=True,
                timeout=timeout, cwd=private, env=_suite_env(env),
            )
            returncode, output = completed.returncode, completed.stdout + completed.stderr
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out:
        finished = _read_report(report)
        shutil.rmtree(private, ignore_errors=True)
        if plan is None:
            raise EvaluationError(
                f"The hidden suite {suite_dir} did not finish within {timeout} s; "
                "raise evaluation_timeout in its assignment.toml."
            ) from None
        checks = _with_unfinished(finished or [], plan, timeout)
        untrusted.replace_file(Path(report_path), json.dumps({"tests": [c.to_dict() for c in checks]}))
        return checks
    # pytest exits 1 when checks fail: that is grading working, not breaking.
    checks = _read_report(report)
    shutil.rmtree(private, ignore_errors=True)
    if returncode not in (0, 1) or checks is None:
        raise EvaluationError(
            f"The hidden suite {suite_dir} could not run (pytest exit code "
            f"{returncode}):\n{output[-3000:]}"
        )
    if plan is not None:
        _check_against_plan(suite_dir, checks, plan)
    untrusted.replace_file(Path(report_path), json.dumps({"tests": [c.to_dict() for c in checks]}, indent=2))
    return checks


def _read_report(report: Path) -> list[CheckResult] | None:
    """The checks the suite's process reported (it rewrites its report after
    every check), or ``None`` when it wrote none."""
    try:
        return [CheckResult.from_dict(entry) for entry in json.loads(report.read_text())["tests"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _with_unfinished(finished: list[CheckResult], plan: list[PlannedCheck],
                     timeout: int) -> list[CheckResult]:
    """The planned checks in order: those the suite finished as it judged
    them, the others 0 because the evaluation ran out of time."""
    done = {c.name: c for c in finished}
    message = (
        f"Not checked: evaluating your work took longer than the grader's limit of {timeout} s, "
        "so this check did not finish. A model this slow to load or to predict is usually far "
        "larger or deeper than the assignment needs; build the smaller model the notebook asks for."
    )
    return [done.get(p.name) or CheckResult(p.name, 0.0, p.points, Status.FAIL, message, p.description)
            for p in plan]


def _check_against_plan(suite_dir: Path, checks: list[CheckResult], plan: list[PlannedCheck]) -> None:
    """The run reported exactly the planned checks, each out of its planned points."""
    reported = [(c.name, c.max_score) for c in checks]
    planned = [(p.name, p.points) for p in plan]
    if sorted(reported) != sorted(planned):
        missing = sorted(set(planned) - set(reported))
        extra = sorted(set(reported) - set(planned))
        raise EvaluationError(
            f"The hidden suite {suite_dir} reported other checks than the assignment declares "
            f"(missing: {missing or 'none'}; unexpected: {extra or 'none'}). The maximum score "
            "comes from the assignment, so this submission was not graded."
        )


def collect_plan(suite_dir: Path, *, timeout: int = 300) -> list[PlannedCheck]:
    """The checks ``suite_dir`` declares and their points, from pytest's
    collection (nothing runs). A suite that does not collect, or declares
    no check, is an :class:`EvaluationError`."""
    return _PlanCollection(suite_dir, timeout).result()


class _PlanCollection:
    """A collection of the suite's checks running in the background."""

    def __init__(self, suite_dir: Path, timeout: int, env: Mapping[str, str] | None = None):
        self.suite_dir, self.timeout = suite_dir, timeout
        self.private = Path(tempfile.mkdtemp(prefix="autograder-plan-"))
        self.plan_file = self.private / "plan.json"
        self.process = subprocess.Popen(
            _pytest_command(suite_dir, "--collect-only", "--grading-plan", str(self.plan_file)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.private,
            env=_suite_env(env),
        )

    def result(self) -> list[PlannedCheck]:
        try:
            output, _ = self.process.communicate(timeout=self.timeout)
            entries = json.loads(self.plan_file.read_text()) if self.plan_file.is_file() else None
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            output, entries = f"collection took longer than {self.timeout} s", None
        finally:
            shutil.rmtree(self.private, ignore_errors=True)
        if self.process.returncode != 0 or not entries:
            raise EvaluationError(
                f"The hidden suite {self.suite_dir} could not be collected (pytest exit code "
                f"{self.process.returncode}), so the assignment's checks and points are unknown:\n"
                f"{(output or '')[-3000:]}"
            )
        return [PlannedCheck(**entry) for entry in entries]


_plans: dict[str, list[PlannedCheck]] = {}
"""Plans collected in this process, by the fingerprint of suite and kit."""


def tree_digest(*roots: Path) -> str:
    """A fingerprint of every file under ``roots`` (names and contents, links
    as their targets), the compiled-bytecode caches aside."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if "__pycache__" in path.parts or (path.is_dir() and not path.is_symlink()):
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(f"-> {os.readlink(path)}".encode() if path.is_symlink() else path.read_bytes())
    return digest.hexdigest()


def _copy_tree(source: Path, target: Path, *skip: str) -> None:
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", *skip))


def copy_kit(kit_dir: Path) -> str:
    """Copy the kit's package without its hidden suites (and, in a checkout,
    the dataset manifest beside it) into ``kit_dir``, a new directory to put
    first on a suite process's ``sys.path``; returns the copy's :func:`tree_digest`."""
    _copy_tree(PACKAGE_DIR, kit_dir / PACKAGE_DIR.name, "suites")
    data = kit_data_dir()
    if PACKAGE_DIR not in data.parents:  # a checkout: the manifest sits beside the package
        (kit_dir / data.name).mkdir()
        for path in data.iterdir():
            if path.is_file():
                shutil.copy2(path, kit_dir / data.name / path.name)
    return tree_digest(kit_dir)


def start_warm(kit_dir: Path, kit_digest: str, env: Mapping[str, str] | None = None) -> WarmEvaluator:
    """This process's warm evaluator (:mod:`autograder.engine.warm`) for the
    kit copied into ``kit_dir`` by :func:`copy_kit`, serving evaluations whose
    environment is this process's plus ``env``, as :func:`run_suite` gives them."""
    return warm_evaluator(kit_dir, kit_digest, _suite_env(env))


class TrustedSuite:
    """The hidden suite and the kit's code as they were before the kernel
    ran (see the module).

    Use as a context manager around the kernel's run: entering copies the
    suite and the kit's package (with its dataset manifest) into a private
    directory, fingerprints the copy, and starts collecting the plan from it
    in the background; :meth:`verify` after the kernel raises
    :class:`IntegrityError` if the copy changed (only an unconfined kernel
    could reach it); :meth:`run` evaluates with the copy, whose package comes
    first on the suite process's ``sys.path``. Leaving removes the copy.

    The plan of a suite and kit that fingerprint alike is collected once per
    process. Given the evaluator's environment ``warm_env``, entering also
    starts (or finds) this process's warm evaluator for the kit
    (:mod:`autograder.engine.warm`), which imports while the kernel runs.
    """

    def __init__(self, suite_dir: Path, *, warm_env: Mapping[str, str] | None = None):
        self.source = Path(suite_dir)
        self.warm_env = warm_env

    def __enter__(self) -> "TrustedSuite":
        self.private = Path(tempfile.mkdtemp(prefix="autograder-trusted-"))
        self.suite_dir = self.private / "suite" / self.source.name
        self.kit_dir = self.private / "kit"
        _copy_tree(self.source, self.suite_dir)
        kit_digest = copy_kit(self.kit_dir)
        self.env = {"PYTHONPATH": os.pathsep.join(
            [str(self.kit_dir), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.fingerprint = self._fingerprint(kit_digest)
        self._plan: list[PlannedCheck] | None = _plans.get(self.fingerprint)
        self._collection = None if self._plan else _PlanCollection(self.suite_dir, timeout=300,
                                                                    env=self.env)
        self.warm = None
        if self.warm_env is not None:
            self.warm = start_warm(self.kit_dir, kit_digest, self.warm_env)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._collection is not None and self._collection.process.poll() is None:
            self._collection.process.kill()
            self._collection.process.communicate()
        shutil.rmtree(self.private, ignore_errors=True)

    def _fingerprint(self, kit_digest: str | None = None) -> str:
        """The suite's digest and the kit's (``kit_digest`` when already known), as one."""
        kit_digest = kit_digest or tree_digest(self.kit_dir)
        return hashlib.sha256(f"{tree_digest(self.suite_dir)}\0{kit_digest}".encode()).hexdigest()

    @property
    def plan(self) -> list[PlannedCheck]:
        """The assignment's checks and points (waits for the collection)."""
        if self._plan is None:
            self._plan = _plans[self.fingerprint] = self._collection.result()
            self._collection = None
        return self._plan

    def verify(self) -> None:
        """Raise :class:`IntegrityError` if the private copy changed."""
        if self._fingerprint() != self.fingerprint:
            raise IntegrityError(
                f"The private copy of the hidden suite and the kit's code ({self.private}) changed "
                "while the student's code ran, so nothing from this run was graded. Only a kernel "
                "without a sandbox can reach it: grade with --sandbox bwrap."
            )

    def run(self, artifacts_dir: Path, report_path: Path, *, timeout: int,
            feedback_dir: Path | None = None, env: Mapping[str, str] | None = None) -> list[CheckResult]:
        return run_suite(self.suite_dir, artifacts_dir, report_path, timeout=timeout,
                         feedback_dir=feedback_dir, plan=self.plan, env={**self.env, **(env or {})},
                         warm=self.warm)


def _private_copy(artifacts_dir: Path) -> tuple[Path, Path, Path]:
    """A private directory for the suite's process: its working directory,
    a copy of the artifacts (regular files only, within the size limits) and
    the place of its report. Returns the three paths."""
    private = Path(tempfile.mkdtemp(prefix="autograder-suite-"))
    artifacts = private / "artifacts"
    skipped = untrusted.copy_regular_files(
        artifacts_dir, artifacts,
        max_file_bytes=artifact_files.MAX_ARTIFACT_BYTES,
        max_total_bytes=artifact_files.MAX_ARTIFACTS_BYTES,
    )
    _log_skipped(artifacts, skipped)
    return private, artifacts, private / "report.json"


def _log_skipped(artifacts: Path, skipped: dict[str, str]) -> None:
    """Tell the student, through the export log the suite reads, why an
    artifact file the kernel wrote was not read."""
    log_path = artifacts / artifact_files.EXPORT_LOG
    log = artifact_files.read_export_log(log_path)
    for filename, why in skipped.items():
        name = artifact_files.variable_of(filename)
        if name:
            log[name] = artifact_files.ExportEntry(
                "invalid", f"`{name}` was not graded: the file it was saved to, {filename}, "
                           f"was not read because {why}.")
    if any(artifact_files.variable_of(filename) for filename in skipped):
        untrusted.replace_file(log_path, artifact_files.export_log_json(log))
