"""What every assignment must satisfy, whatever it teaches, for each
assignment that has a hidden suite: the committed release is what nbgrader
generates from the source notebook, each graded cell is worth the points of
the check it calls, the reference solution earns full marks through the real
command line, and the blank release earns nothing without crashing.

The checks and their points come from the hidden suite itself (the grader's
plan), never from a table here. Each reference and each blank release is
graded once per session (``reference_cli``, ``blank_release``) and shared
with the per-assignment modules, which hold the wrong submissions."""

import json

import nbformat
import pytest

from autograder.course import known_assignments
from autograder.engine import sandbox
from autograder.results import Status
from conftest import (
    REPO,
    check_called,
    course_copy,
    graded_cells,
    nbgrader,
    needs_data_of,
    planned_points,
)

QUICK = {"linear_grading", "toy_functions"}
"""Assignments whose reference trains in seconds (on grading.npz); the others
train on full datasets and are slow."""
GRADED = [
    pytest.param(name, marks=[needs_data_of(name)] + ([] if name in QUICK else [pytest.mark.slow]))
    for name in known_assignments()
]


# ---------------------------------------------------------------- the notebooks


@pytest.mark.parametrize("name", known_assignments())
def test_committed_release_is_what_generate_assignment_produces(name, tmp_path):
    course = course_copy(tmp_path, [name])
    nbgrader(course, "generate_assignment", name, "--force")
    produced = course / "assignments" / name
    committed = REPO / "assignments" / name
    assert sorted(p.name for p in produced.iterdir()) == sorted(p.name for p in committed.iterdir())
    for path in produced.iterdir():
        if path.suffix == ".ipynb":
            assert json.loads(path.read_text()) == json.loads((committed / path.name).read_text()), (
                f"{committed / path.name} drifted from solutions/; run "
                f"`nbgrader generate_assignment {name} --force` and commit the result."
            )
        else:
            assert path.read_bytes() == (committed / path.name).read_bytes()


@pytest.mark.parametrize("name", known_assignments())
def test_every_source_cell_has_a_grade_id(name):
    source = nbformat.read(REPO / "solutions" / name / f"{name}.ipynb", as_version=4)
    assert all(c.metadata.get("nbgrader", {}).get("grade_id") for c in source.cells), (
        "every source cell needs an nbgrader grade_id so submissions can be matched to it"
    )


@pytest.mark.parametrize("name", known_assignments())
def test_every_check_has_one_graded_cell_worth_its_points(name):
    """The same points whether graded by `autograder grade` or `nbgrader
    autograde`: each check of the suite is called by exactly one graded cell,
    worth the check's points, and no graded cell calls anything else."""
    called = [(check_called(c), c.metadata["nbgrader"]["points"]) for c in graded_cells(name)]
    assert sorted(called) == sorted(planned_points(name).items())


# ---------------------------------------------------------------- graded end to end


@pytest.mark.parametrize("name", GRADED)
def test_reference_solution_scores_full_marks_through_the_cli(name, reference_cli):
    results, stdout = reference_cli(name)
    points = planned_points(name)
    assert [(t["name"], t["max_score"]) for t in results["tests"]] == list(points.items())
    assert all(t["status"] == "pass" for t in results["tests"]), results["tests"]
    assert results["score"] == results["max_score"] == sum(points.values())
    total = f"{sum(points.values()):g}"
    assert f"score {total}/{total}" in stdout
    assert results["execution_time"] > 0
    assert not [n for n in results["notes"] if "raised" in n or "limit" in n], results["notes"]
    # Written with --json alone: the suite's measurements and the sandbox are recorded anyway.
    assert results["metrics"] and all(isinstance(v, float) for v in results["metrics"].values()), results["metrics"]
    expected_sandbox = "bwrap" if sandbox.bwrap_problem() is None else "none ("
    assert results["sandbox"].startswith(expected_sandbox) and f"sandbox: {results['sandbox']}" in stdout


@pytest.mark.parametrize("name", GRADED)
def test_blank_release_scores_zero_with_every_check_not_attempted(name, blank_release):
    result = blank_release(name)
    points = planned_points(name)
    assert [(t.name, t.max_score) for t in result.tests] == list(points.items())
    assert result.score == 0 and result.max_score == sum(points.values())
    assert all(t.status is Status.NOT_ATTEMPTED for t in result.tests), [
        (t.name, t.status, t.output) for t in result.tests
    ]
    assert any("NotImplementedError" in note for note in result.notes), result.notes
