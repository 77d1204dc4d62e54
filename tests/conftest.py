"""Shared helpers: build student submissions from the real release notebooks
and grade them with the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from autograder.course import default_course_dir, load_assignment
from autograder.engine.grade import grade_submission

REPO = default_course_dir()


def make_submission(path: Path, assignment: str, answers: dict[str, str], *,
                    edit=None) -> Path:
    """Write a student's notebook: the release with ``answers`` (grade_id ->
    code) filled in, as a student would save it from Jupyter. ``edit`` may
    change the notebook further (tamper with cells, delete them)."""
    release = REPO / "assignments" / assignment / f"{assignment}.ipynb"
    notebook = nbformat.read(release, as_version=4)
    unknown = set(answers) - {c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells}
    assert not unknown, f"no such answer cells: {unknown}"
    for cell in notebook.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    if edit:
        edit(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def by_name(result) -> dict:
    """Check results keyed by check name."""
    return {t.name: t for t in result.tests}


@pytest.fixture(scope="session")
def grade(tmp_path_factory):
    """Grade a notebook with the engine; returns the GradingResult."""

    def _grade(path: Path, assignment: str):
        return grade_submission(path, load_assignment(assignment))

    return _grade


@pytest.fixture(scope="session")
def read_json():
    return lambda path: json.loads(Path(path).read_text())
