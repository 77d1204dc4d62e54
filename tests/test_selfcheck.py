"""`autograder check`: a student runs the release's public self-checks before
submitting, with no hidden suite, and learns which cells fail."""

import shutil
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
A = "linear_grading"


def check(notebook):
    return subprocess.run([sys.executable, "-m", "autograder.cli", "check", str(notebook)],
                          capture_output=True, text=True, timeout=600)


def test_an_unfinished_notebook_lists_each_failing_cell_and_exits_1(tmp_path):
    shutil.copytree(REPO / "assignments" / A, tmp_path / A)
    completed = check(tmp_path / A / f"{A}.ipynb")
    assert completed.returncode == 1
    assert "cell 4 (summary): NotImplementedError" in completed.stdout
    assert "(summary_selfcheck): NameError: name 'x_mean' is not defined" in completed.stdout


def test_a_finished_notebook_passes(tmp_path):
    shutil.copytree(REPO / "assignments" / A, tmp_path / A)
    solution = tmp_path / A / "mine.ipynb"
    shutil.copy(REPO / "solutions" / A / f"{A}.ipynb", solution)
    completed = check(solution)
    assert completed.returncode == 0, completed.stdout
    assert "code cells ran without errors" in completed.stdout


def test_a_file_that_is_not_a_notebook_is_named_in_the_error(tmp_path):
    bogus = tmp_path / "essay.ipynb"
    bogus.write_text("Dear grader,")
    completed = check(bogus)
    assert completed.returncode == 2
    assert f"{bogus}: not valid notebook JSON" in completed.stderr
