"""What grading guarantees whatever the kernel did and whatever went wrong on
the grader's side: the maximum is the assignment's, the suite that runs is
the one collected before the kernel, a reused work directory redirects no
write, a slow model costs only the checks it stalled, and a fault of the
grader's environment is never charged to the student."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course import CourseError, load_assignment
from autograder.engine import execute
from autograder.engine.evaluate import EvaluationError, PlannedCheck, collect_plan, run_suite
from autograder.engine.grade import GraderFault, _grader_fault_in, grade_submission
from autograder.results import Status
from conftest import LINEAR_POINTS, LINEAR_SUMMARY, make_submission

A = "linear_grading"

TWO_CHECKS = '''
import time
import pytest

@pytest.mark.points(2)
def test_quick():
    """Answers at once."""

@pytest.mark.points(3)
def test_slow():
    """Takes its time."""
    time.sleep(60)
'''


def _suite(tmp_path, source: str) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_suite.py").write_text(source)
    return suite


def _grade_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder.cli", "grade", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


# ---------------------------------------------------------------- the maximum is the assignment's

def test_the_plan_is_every_check_with_its_points_in_order(tmp_path):
    plan = collect_plan(_suite(tmp_path, TWO_CHECKS))
    assert plan == [PlannedCheck("test_quick", 2.0, "Answers at once."),
                    PlannedCheck("test_slow", 3.0, "Takes its time.")]
    assert [(p.name, p.points) for p in collect_plan(load_assignment(A).suite_dir)] == \
        list(LINEAR_POINTS.items())


@pytest.mark.parametrize("marker", ["points('two')", "points(0)", "points(1, 2)", "points(n=1)"])
def test_a_malformed_points_marker_stops_the_suite_naming_the_check(tmp_path, marker):
    suite = _suite(tmp_path, f"import pytest\n\n@pytest.mark.{marker}\ndef test_odd():\n    pass\n")
    with pytest.raises(EvaluationError, match=r"test_suite.py::test_odd: @pytest.mark.points takes one positive number"):
        collect_plan(suite)


def test_a_run_that_reports_other_checks_than_planned_is_not_graded(tmp_path):
    suite = _suite(tmp_path, "def test_everything():\n    pass\n")
    plan = [PlannedCheck(name, points) for name, points in LINEAR_POINTS.items()]
    (tmp_path / "artifacts").mkdir()
    with pytest.raises(EvaluationError, match="other checks than the assignment declares"):
        run_suite(suite, tmp_path / "artifacts", tmp_path / "report.json", timeout=120, plan=plan)


def test_a_suite_that_runs_out_of_time_costs_only_the_unfinished_checks(tmp_path):
    suite = _suite(tmp_path, TWO_CHECKS)
    (tmp_path / "artifacts").mkdir()
    checks = run_suite(suite, tmp_path / "artifacts", tmp_path / "report.json", timeout=15,
                       plan=collect_plan(suite))
    quick, slow = checks
    assert (quick.status, quick.score) == (Status.PASS, 2.0)
    assert (slow.status, slow.score, slow.max_score) == (Status.FAIL, 0.0, 3.0)
    assert "took longer than the grader's limit of 15 s" in slow.output
    assert json.loads((tmp_path / "report.json").read_text())["tests"][1]["score"] == 0.0


# ---------------------------------------------------------------- the work directory

PLANT_LINKS = LINEAR_SUMMARY + '''
import os
for name in ("kernel.log", "executed.ipynb", "report.json", "grading.npz", ".config"):
    if os.path.lexists(name):
        os.rename(name, name + ".moved")
    os.symlink({canary!r}, name)
print("planted")
'''


def test_a_reused_work_directory_redirects_no_write_through_links_left_in_it(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched")
    notebook = make_submission(tmp_path / "sub" / f"{A}.ipynb", A,
                               {"summary": PLANT_LINKS.format(canary=str(canary))})
    workdir = tmp_path / "work"
    first = grade_submission(notebook, load_assignment(A), workdir=workdir)
    assert (workdir / "kernel.log").is_symlink()  # the kernel did plant them
    second = grade_submission(notebook, load_assignment(A), workdir=workdir)
    assert canary.read_text() == "untouched"
    assert first.score == second.score == LINEAR_POINTS["test_data_summary"]
    assert not (workdir / "executed.ipynb").is_symlink()


def test_a_work_directory_the_grader_did_not_make_is_refused(tmp_path):
    workdir = tmp_path / "mine"
    workdir.mkdir()
    (workdir / "thesis.tex").write_text("years of work")
    with pytest.raises(GraderFault, match="is not empty and was not made by the grader"):
        grade_submission(load_assignment(A).release_notebook, load_assignment(A), workdir=workdir)
    assert (workdir / "thesis.tex").read_text() == "years of work"


# ---------------------------------------------------------------- grader faults are not the student's

def test_missing_data_stops_grading_before_anything_is_graded(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "AUTOGRADER_DATA_DIR": str(empty), "AUTOGRADER_OFFLINE": "1",
           "HOME": str(tmp_path / "home"), "KERAS_HOME": str(tmp_path / "keras")}
    release = load_assignment("mnist_mlp").release_notebook
    done = _grade_cli(release, "--assignment", "mnist_mlp", "--json", tmp_path / "r.json", env=env)
    assert done.returncode == 2
    assert "cannot grade 'mnist_mlp'; nothing was graded" in done.stderr
    assert "dataset mnist" in done.stderr and str(empty) in done.stderr
    assert not (tmp_path / "r.json").exists()
    # A class: the same, before any student is marked.
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "alice.ipynb").write_bytes(release.read_bytes())
    done = _grade_cli(tmp_path / "class", "--assignment", "mnist_mlp", "--output-dir",
                      tmp_path / "out", env=env)
    assert done.returncode == 2 and "nothing was graded" in done.stderr
    assert not list((tmp_path / "out").glob("*/results.json"))


def test_a_loader_failing_in_the_kernel_on_the_assignments_data_is_the_graders_fault():
    assignment = load_assignment("mnist_mlp")
    ran = execute.Execution(errors=[
        ("cell 'load'", "DatasetNotFoundError", "Dataset 'mnist': could not find train-images-idx3-ubyte.gz."),
    ])
    with pytest.raises(GraderFault, match="could not load the dataset 'mnist' that the grader served"):
        _grader_fault_in(assignment, ran)
    # Asking for data the assignment does not use is the student's own error.
    ran.errors = [("cell 'load'", "DatasetNotFoundError", "Dataset 'cifar10': could not find it.")]
    _grader_fault_in(assignment, ran)


def test_a_kernel_that_cannot_start_is_reported_with_what_it_said(tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "ipykernel_launcher.py").write_text(
        "import sys\nprint('libcuda.so.1: cannot open shared object file', file=sys.stderr)\nsys.exit(1)\n")
    monkeypatch.setenv("PYTHONPATH", str(broken))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    work = tmp_path / "work"
    work.mkdir()
    limits = load_assignment(A).limits.__class__(startup_timeout=20)
    with pytest.raises(execute.KernelStartError, match="libcuda.so.1: cannot open shared object file"):
        execute.run(notebook, work, limits, sandbox_mode="none")


def test_the_kernels_loaders_read_the_data_view_alone_and_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", "/srv/all-the-data")
    env = execute.kernel_env(tmp_path, tmp_path / "view")
    assert env["AUTOGRADER_DATA_DIR"] == str(tmp_path / "view") and env["AUTOGRADER_OFFLINE"] == "1"


def test_a_limit_that_makes_no_sense_is_refused_naming_it_and_where_it_came_from():
    with pytest.raises(CourseError, match=r"assignment.toml \(or the command line\): Limit cell_timeout = 0 "
                                          r"is not valid: it must be a positive whole number"):
        load_assignment(A, cell_timeout=0)
