"""The nbgrader path: `nbgrader autograde` records the same points as the
CLI. That every committed release is what `nbgrader generate_assignment`
produces, and every graded cell is worth its check's points, is specified for
every assignment in tests/test_every_assignment.py."""

import shutil

import pytest
from nbgrader.api import Gradebook

from conftest import REPO, check_called, course_copy, grade_with_cli, graded_cells, nbgrader


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
