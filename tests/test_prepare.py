"""The prepare stage: which cells run, whatever the submission did to them."""

import nbformat
import pytest

from autograder.engine.prepare import SubmissionError, check_assignment, merge, read_submission
from conftest import REPO

RELEASES = REPO / "assignments"


def cell(gid, source, *, kind="code", answer=False, grade=False):
    meta = {"nbgrader": {"grade_id": gid, "solution": answer, "grade": grade,
                         "locked": not answer, "schema_version": 3}}
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source, metadata=meta)


HIDDEN = "assert ok\n### BEGIN HIDDEN TESTS\nsecret()\n### END HIDDEN TESTS\n"


@pytest.fixture
def source():
    return nbformat.v4.new_notebook(cells=[
        cell("intro", "# Exercise", kind="markdown"),
        cell("answer", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION", answer=True),
        cell("tests", HIDDEN, grade=True),
    ])


@pytest.fixture
def release():
    return nbformat.v4.new_notebook(cells=[
        cell("intro", "# Exercise", kind="markdown"),
        cell("answer", "# YOUR CODE HERE\nraise NotImplementedError()", answer=True),
        cell("tests", "assert ok\n", grade=True),
    ])


def sources(notebook):
    return [c.source for c in notebook.cells]


def test_answers_come_from_the_submission_and_hidden_tests_are_stripped(source, release):
    submission = nbformat.from_dict(release)
    submission.cells[1].source = "x = 41 + 1"
    merged, notes = merge(source, submission, release)
    assert sources(merged) == ["# Exercise", "x = 41 + 1", "assert ok\n"]
    assert notes == []


def test_edited_test_cell_is_replaced_and_noted(source, release):
    submission = nbformat.from_dict(release)
    submission.cells[2].source = "pass  # tests disabled"
    merged, notes = merge(source, submission, release)
    assert merged.cells[2].source == "assert ok\n"
    assert notes == ["Cell 'tests' was edited; the instructor's version was used instead."]


def test_deleted_cells_are_restored(source, release):
    submission = nbformat.from_dict(release)
    del submission.cells[2]
    del submission.cells[1]
    merged, notes = merge(source, submission, release)
    assert sources(merged) == ["# Exercise", "# YOUR CODE HERE\nraise NotImplementedError()", "assert ok\n"]
    assert any("'answer' is missing" in n for n in notes)
    assert any("'tests' was deleted" in n for n in notes)


def test_cells_the_student_added_stay_after_the_cell_they_followed(source, release):
    submission = nbformat.from_dict(release)
    submission.cells.insert(2, nbformat.v4.new_code_cell("scratch = 2"))
    merged, _ = merge(source, submission, release)
    assert sources(merged)[2] == "scratch = 2"
    assert sources(merged)[3] == "assert ok\n"


def test_student_metadata_cannot_turn_a_test_cell_into_an_answer(source, release):
    submission = nbformat.from_dict(release)
    submission.cells[2].metadata["nbgrader"]["solution"] = True
    submission.cells[2].source = "pass"
    merged, _ = merge(source, submission, release)
    assert merged.cells[2].source == "assert ok\n"


def test_duplicated_cell_ids_grade_the_first_copy_and_lose_their_metadata(source, release):
    submission = nbformat.from_dict(release)
    submission.cells[1].source = "x = 1"
    duplicate = nbformat.from_dict(submission.cells[1])
    duplicate.source = "x = 'duplicate'"
    submission.cells.append(duplicate)
    merged, notes = merge(source, submission, release)
    assert merged.cells[1].source == "x = 1"
    assert merged.cells[-1].source == "x = 'duplicate'"
    assert "nbgrader" not in merged.cells[-1].metadata
    assert any("more than once" in n for n in notes)


@pytest.mark.parametrize("content, message", [
    ("{ not json", "not valid notebook JSON"),
    ('{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "readable notebook"),
])
def test_unreadable_submissions_raise_an_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "sub.ipynb"
    path.write_text(content)
    with pytest.raises(SubmissionError, match=message) as info:
        read_submission(path)
    assert str(path) in str(info.value)


def test_binary_file_is_not_a_notebook(tmp_path):
    path = tmp_path / "photo.ipynb"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(SubmissionError, match="not a text file"):
        read_submission(path)


def test_grading_the_source_notebook_itself_reports_no_edits(source, release):
    merged, notes = merge(source, nbformat.from_dict(source), release)
    assert notes == []
    assert merged.cells[2].source == "assert ok\n"


def test_this_assignments_notebook_is_never_taken_for_another_even_when_heavily_edited():
    release_path = RELEASES / "linear_grading" / "linear_grading.ipynb"
    submission = nbformat.read(release_path, as_version=4)
    locked = [c for c in submission.cells if not c.metadata["nbgrader"]["solution"]]
    for cell in locked[1:]:  # every fixed cell but one edited
        cell.source = "edited"
    check_assignment(submission, release_path)  # no error: it is graded as usual


def test_a_notebook_without_cell_ids_is_run_with_a_note_saying_no_answer_cell_was_found(source, release):
    submission = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    check_assignment(submission, RELEASES / "linear_grading" / "linear_grading.ipynb")
    merged, notes = merge(source, submission, release)
    assert merged.cells[0].source == "x = 1"
    assert "None of your notebook's cells carries this assignment's cell ids" in notes[0]
