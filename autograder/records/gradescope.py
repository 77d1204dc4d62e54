"""Gradescope: ``results.json`` in the format of Gradescope's autograder
specification (https://gradescope-autograders.readthedocs.io/en/latest/specs/),
and the program that ``run_autograder`` starts inside Gradescope's container.

The mapping:

- ``score``: the submission's points; ``execution_time``: whole seconds;
  ``output``: the notes a student should read (restored cells, errors in
  their cells). Staff notes (``staff_notes``: an unconfined kernel, say) go to standard
  output instead, which Gradescope shows to staff only.
- ``tests``: one per check, with ``name`` (the check's one-line description,
  or its name), ``score``, ``max_score``, ``status`` (``passed`` or
  ``failed``: the only two the specification knows; our four-way status
  and the check's name are kept in ``extra_data``), ``output`` (the teaching
  message) and ``visibility``.
- ``leaderboard``: the suite's own measurement of test accuracy (higher is
  better) or test MAE (``"order": "asc"``: lower is better), where the
  result has one; every metric the suite recorded is also kept in the
  top-level ``extra_data``, which Gradescope stores for staff.

Visibility defaults to ``visible``: the checks' messages are written to say
what to fix and never quote the suite, the metrics behind them are
recomputed on data the grader loads itself, so showing them leaks nothing
a resubmission could exploit, and the course is formative. An assessment
that must not give feedback before the deadline passes
``visibility="after_due_date"`` (``--visibility`` of ``gradescope-bundle``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.atomic import write_atomic
from autograder.course import PACKAGE_DIR
from autograder.records.common import points
from autograder.results import RESULTS_FILE, GradingResult, Status

VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
"""Gradescope's visibility settings, most open first."""
DEFAULT_VISIBILITY = "visible"

LEADERBOARD: dict[str, tuple[str, str]] = {
    "test_accuracy": ("Test accuracy", "desc"),
    "test_mae": ("Test MAE", "asc"),
}
"""Metric recorded by a suite -> (leaderboard column, Gradescope ``order``)."""

GRADESCOPE_ROOT_ENV = "GRADESCOPE_ROOT"
"""Where the ``/autograder`` tree is; only tests point it elsewhere."""
DEFAULT_ROOT = Path("/autograder")

_LABEL = {Status.ERROR: "Could not be checked", Status.NOT_ATTEMPTED: "Not attempted"}


def _check_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r} is not one of Gradescope's: {', '.join(VISIBILITIES)}")
    return visibility


def leaderboard(result: GradingResult, *, metrics: dict[str, tuple[str, str]] = LEADERBOARD) -> list[dict]:
    """Gradescope leaderboard entries for the metrics in ``result`` named in ``metrics``."""
    entries = []
    for key, (name, order) in metrics.items():
        value = result.metrics.get(key)
        if isinstance(value, (int, float)) and value == value:  # not NaN
            entries.append({"name": name, "value": round(float(value), 4), "order": order})
    return entries


def to_results(result: GradingResult, *, visibility: str = DEFAULT_VISIBILITY,
               metrics: dict[str, tuple[str, str]] = LEADERBOARD) -> dict:
    """``result`` as Gradescope's ``results.json`` object.

    ``visibility`` applies to every test (``visible``, ``after_due_date``,
    ``after_published`` or ``hidden``); ``metrics`` chooses which of the
    suite's measurements become leaderboard columns.
    """
    _check_visibility(visibility)
    tests = []
    for check in result.tests:
        output = check.output
        if check.status in _LABEL:
            output = f"{_LABEL[check.status]}: {output}" if output else _LABEL[check.status] + "."
        tests.append({
            "name": check.description or check.name,
            "score": check.score,
            "max_score": check.max_score,
            "status": "passed" if check.status is Status.PASS else "failed",
            "output": output,
            "output_format": "text",
            "visibility": visibility,
            "extra_data": {"check": check.name, "status": check.status.value},
        })
    data: dict = {
        "score": result.score,
        "execution_time": int(round(result.execution_time)),
        "tests": tests,
    }
    if result.notes:  # staff notes never reach the student
        data["output"] = "\n".join(result.notes)
        data["output_format"] = "text"
    board = leaderboard(result, metrics=metrics)
    if board:
        data["leaderboard"] = board
    if result.metrics:  # stored with the submission, for staff
        data["extra_data"] = {"metrics": dict(result.metrics)}
    return data


def message_results(message: str, *, score: float = 0.0) -> dict:
    """A ``results.json`` object that only tells the student something:
    nothing could be graded (no notebook, several notebooks)."""
    return {"score": score, "execution_time": 0, "output": message, "output_format": "text"}


def write_results(path: Path, result: GradingResult, *, visibility: str = DEFAULT_VISIBILITY,
                  metrics: dict[str, tuple[str, str]] = LEADERBOARD) -> None:
    """Write :func:`to_results` to ``path`` (e.g. ``/autograder/results/results.json``) atomically."""
    write_atomic(path, json.dumps(to_results(result, visibility=visibility, metrics=metrics), indent=2))


def write_message(path: Path, message: str, *, score: float = 0.0) -> None:
    """Write :func:`message_results` to ``path`` atomically."""
    write_atomic(path, json.dumps(message_results(message, score=score), indent=2))


# ------------------------------------------------------------ run_autograder

def find_notebooks(submission_dir: Path) -> list[Path]:
    """The notebooks a student uploaded: those at the top of ``submission_dir``,
    else those anywhere below it (an uploaded folder), never Jupyter's
    checkpoint copies."""
    submission_dir = Path(submission_dir)
    top = sorted(p for p in submission_dir.glob("*.ipynb") if p.is_file() and not p.name.startswith("."))
    if top:
        return top
    return sorted(
        p for p in submission_dir.rglob("*.ipynb")
        if p.is_file() and ".ipynb_checkpoints" not in p.parts
        and not any(part.startswith(".") for part in p.relative_to(submission_dir).parts)
    )


def run_autograder(*, assignment: str, root: Path | None = None, sandbox: str = "auto",
                   visibility: str = DEFAULT_VISIBILITY, python: str = sys.executable) -> int:
    """Grade the notebook in ``ROOT/submission`` and write ``ROOT/results/results.json``.

    ``root`` defaults to ``$GRADESCOPE_ROOT``, else ``/autograder``. The
    notebook is graded by the kit's own command line (``autograder grade``,
    in a child process), whose result is then written in Gradescope's
    format. A results file is written in every case: with a message and no
    points when there is no notebook or more than one, or when grading itself
    could not run (the details then go to standard output, for staff).
    Returns 0 when the submission was graded or turned away, 1 when grading
    could not run.
    """
    _check_visibility(visibility)
    root = Path(root or os.environ.get(GRADESCOPE_ROOT_ENV) or DEFAULT_ROOT)
    results_path = root / "results" / "results.json"
    notebooks = find_notebooks(root / "submission")
    if not notebooks:
        write_message(results_path, (
            f"No notebook was found in your submission. Upload your {assignment}.ipynb "
            "file (the .ipynb you worked in, not a PDF or a .py export) and submit again."
        ))
        print(f"no .ipynb in {root / 'submission'}; wrote a message to {results_path}")
        return 0
    if len(notebooks) > 1:
        names = ", ".join(str(p.relative_to(root / "submission")) for p in notebooks)
        write_message(results_path, (
            f"Your submission holds {len(notebooks)} notebooks ({names}), so it is not clear which "
            f"one to grade. Submit only your {assignment}.ipynb and submit again."
        ))
        print(f"several notebooks in {root / 'submission'}: {names}; wrote a message to {results_path}")
        return 0

    print(f"grading with the kit in {PACKAGE_DIR}")
    with tempfile.TemporaryDirectory(prefix="autograder-gradescope-") as work:
        out = Path(work) / "graded"
        command = [python, "-m", "autograder.cli", "grade", str(notebooks[0]),
                   "--assignment", assignment, "--sandbox", sandbox, "--output-dir", str(out),
                   # The student's kernel has no business with the results it is
                   # about to earn, nor with Gradescope's record of earlier ones.
                   "--hide", str(root / "results"), "--hide", str(root / "submission_metadata.json")]
        print("$ " + " ".join(command), flush=True)
        completed = subprocess.run(command, capture_output=True, text=True)
        print(completed.stdout, end="")
        print(completed.stderr, end="", flush=True)
        try:
            result = GradingResult.from_dict(json.loads((out / RESULTS_FILE).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            result = None
    if completed.returncode != 0 or result is None:
        write_message(results_path, (
            "The autograder could not grade your notebook because of a problem on the course's "
            "side, not in your work. Course staff can see the details; please tell them, "
            "then submit again once they have fixed it."
        ))
        print(f"grading failed (exit code {completed.returncode}); wrote a message to {results_path}")
        return 1
    for note in result.staff_notes:
        print(note)
    write_results(results_path, result, visibility=visibility)
    print(f"score {points(result.score)}/{points(result.max_score)}; wrote {results_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.records.gradescope",
        description="Gradescope's run_autograder: grade ROOT/submission/*.ipynb, "
                    "write ROOT/results/results.json.",
    )
    parser.add_argument("--assignment", required=True)
    parser.add_argument("--root", type=Path, help=f"default: ${GRADESCOPE_ROOT_ENV}, else {DEFAULT_ROOT}")
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    parser.add_argument("--visibility", default=DEFAULT_VISIBILITY, choices=VISIBILITIES)
    args = parser.parse_args(argv)
    return run_autograder(assignment=args.assignment, root=args.root, sandbox=args.sandbox,
                          visibility=args.visibility)


if __name__ == "__main__":
    sys.exit(main())
