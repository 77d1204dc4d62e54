"""Run hidden-suite checks from nbgrader's autograded test cells.

The instructor's source notebook ends each graded cell with a hidden region
that calls :func:`check`. Under ``nbgrader autograde`` the call exports the
kernel's artifacts, runs the same hidden suite as ``autograder grade`` in a
separate process, and turns one check's result into what nbgrader reads:
the points as the cell's value (nbgrader's partial credit), or an error
carrying the check's message when it earns nothing.

The suite runs in a child of a warm evaluator (:mod:`autograder.engine.warm`)
that the kernel starts at its first check, from its own copy of the kit, so
a notebook pays the imports of Keras and the suite once, not once per
distinct set of artifacts; the evaluation falls back to a fresh process as
in the engine.

This path runs inside the student's kernel, so a determined student can
interfere with it; ``autograder grade`` is the path to trust (docs/security.md).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

from autograder.artifacts import EXPORT_LOG, RUNTIME_LOG, suffixes
from autograder.course import load_assignment
from autograder.datasets.served import HOLDOUT_SEED_ENV
from autograder.engine.evaluate import copy_kit, run_suite, start_warm
from autograder.engine.kernel_export import _autograder_export_artifacts
from autograder.results import Status

SUITE_ENV = {HOLDOUT_SEED_ENV: ""}
"""The kernel here loaded every training image: nothing was held out."""
_reports: dict[str, dict] = {}


class CheckNotPassed(Exception):
    """Raised in a graded cell so that nbgrader awards it no points."""


def _digest(directory: Path) -> str:
    """A digest of the exported artifacts that ignores when they were saved:
    a ``.keras`` archive records its save time, so its members are hashed
    without ``metadata.json``."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        digest.update(path.name.encode())
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                for member in sorted(archive.namelist()):
                    if member != "metadata.json":
                        digest.update(member.encode() + archive.read(member))
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _kit_copy() -> tuple[Path, str]:
    """The copy of the kit this kernel's warm evaluator imports from, and its digest."""
    private = Path(tempfile.mkdtemp(prefix="autograder-nbgrader-kit-"))
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    return private / "kit", copy_kit(private / "kit")


def check(assignment_name: str, check_name: str, namespace: dict) -> float:
    """Points earned by ``check_name`` for the work in ``namespace``.

    The whole suite runs once per distinct set of artifacts, so several graded
    cells after the same work cost one evaluation.
    """
    assignment = load_assignment(assignment_name)
    workdir = Path(tempfile.mkdtemp(prefix="autograder-nbgrader-"))
    artifacts_dir = workdir / "artifacts"
    with warnings.catch_warnings():
        # nbgrader gives a graded cell 0 points if it writes to stderr.
        warnings.simplefilter("ignore")
        _autograder_export_artifacts(namespace, assignment.artifacts, str(artifacts_dir),
                                     suffixes(assignment.artifacts), EXPORT_LOG, RUNTIME_LOG)
    try:
        key = f"{assignment_name}:{_digest(artifacts_dir)}"
        if key not in _reports:
            results = run_suite(
                assignment.suite_dir, artifacts_dir, workdir / "report.json",
                timeout=assignment.limits.evaluation_timeout, env=SUITE_ENV,
                warm=start_warm(*_kit_copy(), SUITE_ENV),
            )
            _reports[key] = {r.name: r for r in results}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = _reports[key].get(check_name)
    if result is None:
        raise LookupError(f"The hidden suite of {assignment_name!r} has no check {check_name!r}.")
    if result.score > 0:
        if result.output:
            print(result.output)
        return result.score
    label = "not attempted" if result.status is Status.NOT_ATTEMPTED else result.status.value
    raise CheckNotPassed(f"{check_name} ({label}): {result.output}")
