"""The nbgrader path: releases are what `nbgrader generate_assignment`
produces, and `nbgrader autograde` records the same points as the CLI."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.course import known_assignments, load_assignment
from autograder.engine.evaluate import run_suite
from conftest import REPO, grade_with_cli

NBGRADER = [sys.executable, "-m", "nbgrader"]


def course_copy(tmp: Path, assignments) -> Path:
    """A throw-away nbgrader course: the config and the instructor's sources."""
    course = tmp / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    for name in assignments:
        shutil.copytree(REPO / "solutions" / name, course / "solutions" / name, symlinks=False)
    return course


def nbgrader(course: Path, *args):
    completed = subprocess.run(
        [*NBGRADER, *args, "--db", f"sqlite:///{course / 'gradebook.db'}"],
        cwd=course, capture_output=True, text=True, timeout=1200,
        # nbgrader runs the `alembic` command by name: it must be on PATH.
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def graded_cells(name):
    notebook = nbformat.read(REPO / "solutions" / name / f"{name}.ipynb", as_version=4)
    return [c for c in notebook.cells if c.metadata["nbgrader"].get("grade")]


def check_called(cell) -> str:
    """The hidden-suite check a graded cell runs (the bridge call's 2nd argument)."""
    call = next(line for line in cell.source.splitlines() if line.startswith("check("))
    return call.split(",")[1].strip().strip("'\"")


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
def test_every_check_has_one_graded_cell_worth_its_points(name, tmp_path):
    source = nbformat.read(REPO / "solutions" / name / f"{name}.ipynb", as_version=4)
    assert all(c.metadata.get("nbgrader", {}).get("grade_id") for c in source.cells), (
        "every source cell needs an nbgrader grade_id so submissions can be matched to it"
    )
    assignment = load_assignment(name)
    checks = run_suite(assignment.suite_dir, tmp_path / "none", tmp_path / "r.json", timeout=600)
    cells = {check_called(c): c.metadata["nbgrader"]["points"] for c in graded_cells(name)}
    assert cells == {c.name: c.max_score for c in checks}


@pytest.mark.slow
def test_nbgrader_autograde_records_the_same_points_as_the_cli(
    tmp_path, reference_cli, linear_partial_submission, read_json
):
    name = "linear_grading"
    course = course_copy(tmp_path, [name])
    nbgrader(course, "generate_assignment", name, "--force")
    submissions = {
        "reference": REPO / "solutions" / name / f"{name}.ipynb",
        "blank": REPO / "assignments" / name / f"{name}.ipynb",
        "partial": linear_partial_submission,
    }
    for student, notebook in submissions.items():
        folder = course / "submitted" / student / name
        folder.mkdir(parents=True)
        shutil.copy(notebook, folder / f"{name}.ipynb")
    nbgrader(course, "autograde", name, "--create")

    cli = {"reference": reference_cli(name)[0]}
    for student in ("blank", "partial"):
        out = tmp_path / f"{student}.json"
        assert grade_with_cli(submissions[student], name, out).returncode == 0
        cli[student] = read_json(out)

    cell_to_check = {c.metadata["nbgrader"]["grade_id"]: check_called(c) for c in graded_cells(name)}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in submissions:
            recorded = gradebook.find_submission_notebook(name, name, student)
            by_check = {cell_to_check[g.name]: g.auto_score for g in recorded.grades}
            expected = {t["name"]: t["score"] for t in cli[student]["tests"]}
            assert by_check == expected, student
    assert sum(expected.values()) == 6.5  # the partial submission really is partial
