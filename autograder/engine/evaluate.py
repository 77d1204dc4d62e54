"""Stage 4, evaluate: run the hidden suite on the exported artifacts.

The suite runs in a separate Python process that never executes student
code: it loads the artifacts with safe loaders and recomputes every metric on
data it loads itself. That process never reads the kernel's work directory
either: the artifacts are first copied, regular files only and within size
limits, into a private directory, which is also its working directory, and
Python starts with ``-P`` so that no module planted beside the artifacts (a
``pytest.py``, a ``numpy.py``) can shadow the ones it imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.engine import untrusted
from autograder.results import CheckResult

MAX_ARTIFACT_BYTES = 1024**3
"""Largest artifact file the suite will read; larger ones count as not saved."""
MAX_ARTIFACTS_BYTES = 2 * 1024**3
"""Largest total of artifact files the suite will read."""
ARTIFACT_SUFFIXES = (".keras", ".history.json", ".npy")


class EvaluationError(Exception):
    """The hidden suite itself could not run (a broken suite, not a bad submission)."""


def run_suite(suite_dir: Path, artifacts_dir: Path, report_path: Path, *,
              timeout: int, feedback_dir: Path | None = None) -> list[CheckResult]:
    """Run every check of the suite in ``suite_dir``; one result per check.

    With ``feedback_dir``, what the checks measured for feedback (metrics,
    predictions on held-out data) is kept there. ``artifacts_dir`` is
    untrusted (the student's kernel wrote it): the suite reads a private copy
    of it (see :func:`_private_copy`), and a copy of its report is left at
    ``report_path``.
    """
    private, artifacts, report = _private_copy(Path(artifacts_dir))
    command = [
        # -P: the working directory does not go on sys.path.
        sys.executable, "-P", "-m", "pytest", str(suite_dir),
        "-p", "autograder.suite_plugin",
        "-p", "no:cacheprovider",
        "--artifacts-dir", str(artifacts),
        "--grading-report", str(report),
        "--rootdir", str(suite_dir),
        "--confcutdir", str(suite_dir),
        "-c", os.devnull,
        "-q", "--no-header", "-rN", "--tb=no",
    ]
    if feedback_dir is not None:
        command += ["--feedback-dir", str(feedback_dir)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout,
            cwd=private, env=env,
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(private, ignore_errors=True)
        raise EvaluationError(
            f"The hidden suite {suite_dir} did not finish within {timeout} s; "
            "raise evaluation_timeout in its assignment.toml."
        ) from None
    # pytest exits 1 when checks fail: that is grading working, not breaking.
    text = report.read_text() if report.is_file() else None
    shutil.rmtree(private, ignore_errors=True)
    if completed.returncode not in (0, 1) or text is None:
        raise EvaluationError(
            f"The hidden suite {suite_dir} could not run (pytest exit code "
            f"{completed.returncode}):\n{(completed.stdout + completed.stderr)[-3000:]}"
        )
    untrusted.replace_file(Path(report_path), text)
    data = json.loads(text)
    return [CheckResult.from_dict(entry) for entry in data["tests"]]


def _private_copy(artifacts_dir: Path) -> tuple[Path, Path, Path]:
    """A private directory for the suite's process: its working directory,
    a copy of the artifacts (regular files only, within the size limits) and
    the place of its report. Returns the three paths."""
    private = Path(tempfile.mkdtemp(prefix="autograder-suite-"))
    artifacts = private / "artifacts"
    skipped = untrusted.copy_regular_files(
        artifacts_dir, artifacts,
        max_file_bytes=MAX_ARTIFACT_BYTES, max_total_bytes=MAX_ARTIFACTS_BYTES,
    )
    _log_skipped(artifacts, skipped)
    return private, artifacts, private / "report.json"


def _log_skipped(artifacts: Path, skipped: dict[str, str]) -> None:
    """Tell the student, through the export log the suite reads, why an
    artifact file the kernel wrote was not read."""
    log_path = artifacts / "export_log.json"
    try:
        log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    except ValueError:
        log = {}
    if not isinstance(log, dict):
        log = {}
    changed = False
    for filename, why in skipped.items():
        for suffix in ARTIFACT_SUFFIXES:
            name = filename[: -len(suffix)]
            if filename.endswith(suffix) and name:
                log[name] = {
                    "status": "invalid",
                    "message": f"`{name}` was not graded: the file it was saved to, {filename}, "
                               f"was not read because {why}.",
                }
                changed = True
    if changed:
        untrusted.replace_file(log_path, json.dumps(log))
