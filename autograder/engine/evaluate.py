"""Stage 4, evaluate: run the hidden suite on the exported artifacts.

The suite runs in a separate Python process that never executes student
code: it loads the artifacts with safe loaders and recomputes every metric on
data it loads itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from autograder.results import CheckResult


class EvaluationError(Exception):
    """The hidden suite itself could not run (a broken suite, not a bad submission)."""


def run_suite(suite_dir: Path, artifacts_dir: Path, report_path: Path, *,
              timeout: int) -> list[CheckResult]:
    """Run every check of the suite in ``suite_dir``; one result per check."""
    command = [
        sys.executable, "-m", "pytest", str(suite_dir),
        "-p", "autograder.suite_plugin",
        "-p", "no:cacheprovider",
        "--artifacts-dir", str(artifacts_dir),
        "--grading-report", str(report_path),
        "--rootdir", str(suite_dir),
        "-c", os.devnull,
        "-q", "--no-header", "-rN", "--tb=no",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout,
            cwd=report_path.parent, env=env,
        )
    except subprocess.TimeoutExpired:
        raise EvaluationError(
            f"The hidden suite {suite_dir} did not finish within {timeout} s; "
            "raise evaluation_timeout in its assignment.toml."
        ) from None
    # pytest exits 1 when checks fail: that is grading working, not breaking.
    if completed.returncode not in (0, 1) or not report_path.is_file():
        raise EvaluationError(
            f"The hidden suite {suite_dir} could not run (pytest exit code "
            f"{completed.returncode}):\n{(completed.stdout + completed.stderr)[-3000:]}"
        )
    data = json.loads(report_path.read_text())
    return [CheckResult.from_dict(entry) for entry in data["tests"]]
