"""Records: a graded class as a CSV gradebook, Gradescope results and bundle,
JUnit XML and nbgrader's gradebook.

Results are built in code from linear_grading's real checks; only the
Gradescope bundle's end-to-end run and the nbgrader export run anything."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import CourseError
from autograder.records import RecordsError, RecordsWarning, check_order, load_results
from autograder.records.commands import add_commands
from autograder.records.gradebook_csv import to_csv, write_csv
from autograder.records.gradescope import message_results, to_results, write_results
from autograder.records.gradescope_bundle import to_bundle, write_bundle
from autograder.records.junit import to_junit
from autograder.records.nbgrader_gradebook import (
    cell_scores,
    hidden_checks,
    notebook_layout,
    write_gradebook,
)
from autograder.results import CheckResult, GradingResult, Status
from conftest import REPO

A = "linear_grading"
CHECKS = [  # linear_grading's checks and points, in the suite's order
    ("test_data_summary", 1), ("test_model_is_linear", 2),
    ("test_input_output_shapes_and_parameters", 1), ("test_training_loss", 2),
    ("test_rounded_grade_accuracy", 3), ("test_weights_make_sense", 1),
]


def result(student, outcomes=None, *, drop=(), notes=(), staff_notes=(), metrics=None, seconds=21.4):
    """A linear_grading result: every check passes unless ``outcomes`` says
    ``{check: (status, score, message)}``; checks in ``drop`` are absent."""
    outcomes = outcomes or {}
    tests = []
    for name, worth in CHECKS:
        if name in drop:
            continue
        status, score, message = outcomes.get(name, (Status.PASS, worth, ""))
        tests.append(CheckResult(name, score, worth, status, message, f"What {name} checks."))
    return GradingResult(A, f"submitted/{student}/{A}/{A}.ipynb", tests, execution_time=seconds,
                         notes=list(notes), staff_notes=list(staff_notes), metrics=dict(metrics or {}),
                         student=student)


@pytest.fixture
def alice():
    return result("alice", metrics={"test_accuracy": 0.93127})


@pytest.fixture
def bob():  # 5.5 of 10: half the accuracy points, one error, one part never done
    return result("bob", {
        "test_data_summary": (Status.NOT_ATTEMPTED, 0, "Your notebook does not define `x_mean`."),
        "test_training_loss": (Status.ERROR, 0, "ValueError while checking: shapes differ"),
        "test_rounded_grade_accuracy": (Status.FAIL, 1.5, "Accuracy 0.62 < 0.70 <needed> & more"),
    }, notes=["Cell 7 raised NameError."],
       staff_notes=["WARNING: the student's code runs without a sandbox (no bwrap)."])


@pytest.fixture
def amy():  # graded by an older suite, without the first check
    return result("amy", drop={"test_data_summary"})


def batch_folder(root: Path, *results: GradingResult) -> Path:
    """A batch's output folder as the batch grader writes it."""
    for r in results:
        folder = root / r.student
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({**r.to_dict(), "fingerprint": {"x": 1}}))
        (folder / "report.html").write_text("<html></html>")
    return root


# ---------------------------------------------------------------- load_results

def test_load_results_reads_every_student_and_names_each_unreadable_file(tmp_path, alice, bob):
    out = batch_folder(tmp_path / "out", alice, bob)
    (out / "carol").mkdir()
    (out / "carol" / "results.json").write_text("{ half a file")
    (out / "dave").mkdir()
    (out / "dave" / "results.json").write_text(json.dumps({"tests": []}))  # no assignment
    with pytest.warns(RecordsWarning) as caught:
        loaded = load_results(out)
    assert [r.student for r in loaded] == ["alice", "bob"]
    assert loaded[1].to_dict() == bob.to_dict()
    warned = [str(w.message) for w in caught]
    assert any(str(out / "carol" / "results.json") in w for w in warned)
    assert any(str(out / "dave" / "results.json") in w and "assignment" in w for w in warned)


def test_a_result_without_a_student_is_named_after_its_folder(tmp_path, alice):
    alice.student = ""
    (tmp_path / "erin").mkdir()
    (tmp_path / "erin" / "results.json").write_text(json.dumps(alice.to_dict()))
    assert [r.student for r in load_results(tmp_path)] == ["erin"]


def test_load_results_of_a_missing_folder_says_what_to_give(tmp_path):
    with pytest.raises(RecordsError, match="does not exist.*--output-dir"):
        load_results(tmp_path / "nowhere")


def test_check_order_keeps_the_suites_order_when_a_submission_lacks_a_check(alice, amy):
    assert check_order([amy, alice]) == [name for name, _ in CHECKS]


# ----------------------------------------------------------------------- CSV

def test_csv_has_one_row_per_student_sorted_and_one_column_per_check(alice, bob, amy):
    rows = list(csv.reader(io.StringIO(to_csv([bob, alice, amy]))))
    assert rows[0] == ["student", "assignment", "score", "max_score", *(n for n, _ in CHECKS)]
    assert [r[0] for r in rows[1:]] == ["alice", "amy", "bob"]
    by_student = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert by_student["bob"]["score"] == "5.5" and by_student["bob"]["max_score"] == "10"
    assert by_student["bob"]["test_rounded_grade_accuracy"] == "1.5"
    assert by_student["bob"]["test_data_summary"] == "0"
    assert by_student["amy"]["test_data_summary"] == ""  # missing, not zero
    assert by_student["amy"]["max_score"] == "9"
    assert by_student["alice"]["score"] == "10"


def test_csv_quotes_what_would_break_a_row(alice):
    alice.student = 'O\'Brien, "Pat"'
    (row,) = list(csv.DictReader(io.StringIO(to_csv([alice]))))
    assert row["student"] == 'O\'Brien, "Pat"' and row["score"] == "10"


def test_write_csv_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path, alice, bob):
    path = tmp_path / "grades.csv"
    path.write_text("an older export\n")
    write_csv(path, [alice, bob])
    assert path.read_text() == to_csv([alice, bob])
    assert os.listdir(tmp_path) == ["grades.csv"]


# ---------------------------------------------------------------- Gradescope

def test_gradescope_results_follow_the_specification(bob):
    data = to_results(bob)
    assert json.loads(json.dumps(data)) == data
    assert data["score"] == 5.5 and data["execution_time"] == 21
    assert data["output"] == "Cell 7 raised NameError."  # the staff note stays out
    assert set(data) == {"score", "execution_time", "output", "output_format", "tests"}
    assert [t["extra_data"]["check"] for t in data["tests"]] == [n for n, _ in CHECKS]
    first, _, _, loss, accuracy, last = data["tests"]
    assert first == {
        "name": "What test_data_summary checks.", "score": 0, "max_score": 1, "status": "failed",
        "output": "Not attempted: Your notebook does not define `x_mean`.", "output_format": "text",
        "visibility": "visible", "extra_data": {"check": "test_data_summary", "status": "not-attempted"},
    }
    assert loss["output"].startswith("Could not be checked: ValueError")
    assert (accuracy["score"], accuracy["status"]) == (1.5, "failed")  # partial credit is not a pass
    assert (last["score"], last["status"], last["output"]) == (1, "passed", "")
    assert "leaderboard" not in data  # bob's result measured nothing


def test_gradescope_visibility_is_a_parameter_and_only_gradescopes_values_pass(alice):
    data = to_results(alice, visibility="after_due_date")
    assert {t["visibility"] for t in data["tests"]} == {"after_due_date"}
    with pytest.raises(ValueError, match="after_published"):
        to_results(alice, visibility="later")


def test_gradescope_leaderboard_shows_accuracy_higher_first_and_mae_lower_first(alice):
    data = to_results(alice)
    assert data["leaderboard"] == [{"name": "Test accuracy", "value": 0.9313, "order": "desc"}]
    assert data["extra_data"] == {"metrics": {"test_accuracy": 0.93127}}
    alice.metrics = {"test_mae": 2.71828, "train_loss": 0.1}
    assert to_results(alice)["leaderboard"] == [{"name": "Test MAE", "value": 2.7183, "order": "asc"}]


def test_write_results_writes_the_json_gradescope_reads(tmp_path, alice):
    path = tmp_path / "results" / "results.json"
    write_results(path, alice, visibility="hidden")
    data = json.loads(path.read_text())
    assert data["score"] == 10 and {t["visibility"] for t in data["tests"]} == {"hidden"}
    assert message_results("No notebook.") == {
        "score": 0.0, "execution_time": 0, "output": "No notebook.", "output_format": "text"}


# ----------------------------------------------------------------- the bundle

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "bundle.zip"
    write_bundle(path, assignment=A)
    return path


def unzip_like_gradescope(bundle: Path, root: Path) -> Path:
    """Unpack into ROOT/source keeping file modes, copy run_autograder to ROOT."""
    source = root / "source"
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            archive.extract(info, source)
            os.chmod(source / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def test_bundle_holds_the_kit_this_assignment_and_nothing_private_or_built(bundle):
    names = zipfile.ZipFile(bundle).namelist()
    for needed in ("setup.sh", "run_autograder", "pyproject.toml", "README.md",
                   "autograder/cli.py", "autograder/records/gradescope.py",
                   f"autograder/suites/{A}/test_{A}.py", f"autograder/suites/{A}/assignment.toml",
                   f"solutions/{A}/{A}.ipynb", f"assignments/{A}/{A}.ipynb",
                   "datasets/manifest.json", "datasets/grading.npz"):
        assert needed in names, needed
    parts = {part for name in names for part in name.split("/")[:-1]}
    assert not parts & {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", "tests"}
    assert not any(n.endswith((".pyc", ".whl")) or ".egg-info" in n for n in names)
    assert {n.split("/")[2] for n in names if n.startswith("autograder/suites/")} == {A}
    assert {n for n in names if n.startswith("datasets/")} == {"datasets/manifest.json", "datasets/grading.npz"}
    data_files = [n for n in names if n.endswith((".npz", ".gz", ".npy", ".csv", ".tar"))]
    assert {n.rsplit("/", 1)[-1] for n in data_files} == {"grading.npz"}


def test_bundle_scripts_are_executable_valid_bash_and_name_the_assignment(bundle, tmp_path):
    root = unzip_like_gradescope(bundle, tmp_path / "autograder")
    for script in ("setup.sh", "run_autograder"):
        path = root / "source" / script
        assert path.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
        assert path.read_text().startswith("#!/usr/bin/env bash\n")
        check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    run = (root / "run_autograder").read_text()
    assert f"--assignment {A} " in run and "/autograder" in run
    setup = (root / "source" / "setup.sh").read_text()
    assert 'pip" install --quiet -e "$SOURCE"' in setup and "bubblewrap" in setup


def test_bundle_of_another_assignment_holds_its_suite_and_downloads_its_data(tmp_path):
    path = write_bundle(tmp_path / "mnist.zip", assignment="mnist_cnn", visibility="after_due_date")
    archive = zipfile.ZipFile(path)
    assert {n.split("/")[2] for n in archive.namelist() if n.startswith("autograder/suites/")} == {"mnist_cnn"}
    assert "from autograder.datasets import mnist; mnist.load_data()" in archive.read("setup.sh").decode()
    assert "--visibility after_due_date" in archive.read("run_autograder").decode()


def test_bundle_is_the_same_bytes_from_the_same_sources():
    assert to_bundle(assignment=A) == to_bundle(assignment=A)


def test_bundle_of_an_unknown_assignment_names_the_known_ones(tmp_path):
    with pytest.raises(CourseError, match="Known assignments: .*linear_grading"):
        write_bundle(tmp_path / "x.zip", assignment="no_such_assignment")
    assert not (tmp_path / "x.zip").exists()


def run_autograder(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRADESCOPE_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    return subprocess.run([str(root / "run_autograder")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


def test_run_autograder_without_a_notebook_tells_the_student_what_to_upload(bundle, tmp_path):
    root = unzip_like_gradescope(bundle, tmp_path / "autograder")
    (root / "submission" / f"{A}.pdf").write_bytes(b"%PDF-1.4")
    completed = run_autograder(root)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 0 and f"Upload your {A}.ipynb" in data["output"]


def test_run_autograder_with_two_notebooks_names_both_and_grades_neither(bundle, tmp_path):
    root = unzip_like_gradescope(bundle, tmp_path / "autograder")
    for name in (f"{A}.ipynb", "scratch.ipynb"):
        shutil.copy(REPO / "assignments" / A / f"{A}.ipynb", root / "submission" / name)
    completed = run_autograder(root)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 0 and "linear_grading.ipynb, scratch.ipynb" in data["output"]


def test_run_autograder_without_the_kit_installed_still_writes_a_message(bundle, tmp_path):
    root = unzip_like_gradescope(bundle, tmp_path / "autograder")
    env = {**os.environ, "GRADESCOPE_ROOT": str(root), "AUTOGRADER_PYTHON": str(tmp_path / "no-python")}
    completed = subprocess.run([str(root / "run_autograder")], cwd=root, env=env,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 1 and "setup.sh" in completed.stdout
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 0 and "course's side" in data["output"]


def test_run_autograder_grades_the_reference_solution_with_the_bundled_kit(bundle, tmp_path):
    root = unzip_like_gradescope(bundle, tmp_path / "autograder")
    shutil.copy(REPO / "solutions" / A / f"{A}.ipynb", root / "submission" / f"{A}.ipynb")
    completed = run_autograder(root)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 10
    assert [(t["extra_data"]["check"], t["status"]) for t in data["tests"]] == [
        (name, "passed") for name, _ in CHECKS]
    assert data["execution_time"] > 0
    # What the suite measured came through the command line's results.
    assert data["extra_data"]["metrics"]["rounded_grade_accuracy"] >= 0.70
    # The bundled copy of the kit graded it, not this checkout.
    assert str(root / "source") in completed.stdout


# --------------------------------------------------------------------- JUnit

def test_junit_has_one_suite_per_submission_and_a_case_per_check(alice, bob):
    root = ET.fromstring(to_junit([alice, bob]))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("12", "1", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["alice/linear_grading", "bob/linear_grading"]
    bob_suite = suites[1]
    assert {p.get("name"): p.get("value") for p in bob_suite.find("properties")}["score"] == "5.5"
    cases = {c.get("name"): c for c in bob_suite.findall("testcase")}
    assert list(cases) == [n for n, _ in CHECKS]
    assert {c.get("classname") for c in cases.values()} == {A}
    assert [child.tag for child in cases["test_rounded_grade_accuracy"] if child.tag != "properties"] == ["failure"]
    assert cases["test_rounded_grade_accuracy"].find("failure").get("message") == \
        "Accuracy 0.62 < 0.70 <needed> & more"
    assert cases["test_training_loss"].find("error").get("message").startswith("ValueError")
    assert cases["test_data_summary"].find("skipped").get("message") == "Your notebook does not define `x_mean`."
    assert [c.tag for c in cases["test_weights_make_sense"]] == ["properties"]
    props = {p.get("name"): p.get("value") for p in cases["test_rounded_grade_accuracy"].find("properties")}
    assert props == {"score": "1.5", "max_score": "3"}
    assert "NameError" in bob_suite.find("system-out").text


def test_junit_stays_valid_xml_whatever_a_message_holds(bob):
    bob.tests[4].output = 'red \x1b[31mtext\x1b[0m, a NUL \x00, a bell \x07 and "quotes" ]]> <tag/>'
    bob.student = "bob & <co>"
    root = ET.fromstring(to_junit([bob]))
    failure = root.find("testsuite/testcase/failure")
    assert failure.get("message") == 'red text, a NUL \ufffd, a bell \ufffd and "quotes" ]]> <tag/>'
    assert root.find("testsuite").get("name") == "bob & <co>/linear_grading"


# ------------------------------------------------------------------- nbgrader

def test_each_graded_cell_maps_to_the_checks_its_hidden_region_calls():
    source = nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4)
    layout = notebook_layout(source)
    assert {c.grade_id: c.checks for c in layout.grade_cells} == {
        "summary_hidden": ("test_data_summary",), "model_linear_hidden": ("test_model_is_linear",),
        "model_shapes_hidden": ("test_input_output_shapes_and_parameters",),
        "loss_hidden": ("test_training_loss",), "accuracy_hidden": ("test_rounded_grade_accuracy",),
        "weights_hidden": ("test_weights_make_sense",),
    }
    assert {c.grade_id: c.max_score for c in layout.grade_cells} == {
        cell: points for cell, (_, points) in zip(
            ["summary_hidden", "model_linear_hidden", "model_shapes_hidden", "loss_hidden",
             "accuracy_hidden", "weights_hidden"], CHECKS)}


def test_hidden_checks_reads_every_call_form_and_ignores_visible_code():
    source = (
        "check('a', 'visible_only', globals())\n"
        "### BEGIN HIDDEN TESTS\n"
        "from autograder import nbgrader_bridge\n"
        "nbgrader_bridge.check('a', 'first', globals())\n"
        "check(\"a\", \"second\", globals())\n"
        "### END HIDDEN TESTS\n"
        "### BEGIN HIDDEN TESTS\n%time check('a', 'third', globals())\n### END HIDDEN TESTS\n"
    )
    assert hidden_checks(source) == ["first", "second", "third"]


def test_a_cell_scores_its_checks_and_what_does_not_fit_is_reported(bob, amy):
    layout = notebook_layout(nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    scores, problems = cell_scores(bob, layout)
    assert scores == {"summary_hidden": 0, "model_linear_hidden": 2, "model_shapes_hidden": 1,
                      "loss_hidden": 0, "accuracy_hidden": 1.5, "weights_hidden": 1}
    assert problems == []
    scores, problems = cell_scores(amy, layout)
    assert scores["summary_hidden"] is None
    assert len(problems) == 1 and "summary_hidden" in problems[0] and "manual grade" in problems[0]


def nbgrader_export(course: Path, db: Path) -> dict[str, dict]:
    """Run the real `nbgrader export` and read its CSV by student."""
    completed = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--db", f"sqlite:///{db}", "--to", "grades.csv"],
        cwd=course, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return {row["student_id"]: row for row in csv.DictReader((course / "grades.csv").open())}


def test_gradebook_recorded_by_export_is_what_nbgrader_export_reads(tmp_path, alice, bob, capsys):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "solutions" / A, course / "solutions" / A, symlinks=True)
    out = batch_folder(tmp_path / "graded", alice, bob)
    assert cli("export", "--from", str(out), "--gradebook", "--course-dir", str(course)) == 0
    db = course / "gradebook.db"
    assert str(db) in capsys.readouterr().out

    rows = nbgrader_export(course, db)
    assert {s: (r["assignment"], float(r["score"]), float(r["max_score"])) for s, r in rows.items()} == {
        "alice": (A, 10.0, 10.0), "bob": (A, 5.5, 10.0)}

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}", "intro-deep-learning-keras") as gradebook:
        grade = gradebook.find_grade("accuracy_hidden", A, A, "bob")
        assert (grade.auto_score, grade.needs_manual_grade) == (1.5, False)

        # Recording again (bob regraded) updates his scores in place.
        bob.tests[4] = CheckResult("test_rounded_grade_accuracy", 3, 3, Status.PASS)
        write_gradebook(f"sqlite:///{db}", [bob], course_dir=course)
        gradebook.db.expire_all()
        assert gradebook.find_submission(A, "bob").score == 7.0
        assert gradebook.find_submission(A, "alice").score == 10.0


def test_gradebook_takes_each_submission_time_so_nbgrader_counts_lateness(tmp_path, alice, bob,
                                                                         monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # alembic
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copytree(REPO / "solutions" / A, course / "solutions" / A, symlinks=True)
    db = f"sqlite:///{course / 'gradebook.db'}"
    from nbgrader.api import Gradebook

    with Gradebook(db, "default_course") as gradebook:
        gradebook.update_or_create_assignment(A, duedate="2026-03-14 17:00:00 UTC")
    alice.submitted_at = "2026-03-14 16:59:00.000000 UTC"
    bob.submitted_at = "2026-03-14 18:30:00 CET"  # 17:30 UTC
    carol = result("carol")
    carol.submitted_at = "the fourteenth, about five"

    with pytest.warns(RecordsWarning, match="carol .*'the fourteenth, about five'.* is not a date"):
        problems = write_gradebook(db, [alice, bob, carol], course_dir=course)
    assert len(problems) == 1

    with Gradebook(db, "default_course") as gradebook:
        late = {s: gradebook.find_submission(A, s).total_seconds_late for s in ("alice", "bob", "carol")}
    assert late == {"alice": 0, "bob": 1800, "carol": 0}


def test_gradebook_that_cannot_be_opened_is_a_clear_error(tmp_path, alice):
    with pytest.raises(RecordsError, match="Cannot open the gradebook"):
        write_gradebook(f"sqlite:///{tmp_path}/no/such/folder/gradebook.db", [alice], course_dir=REPO)


# ------------------------------------------------------------ the commands

def cli(*argv: str) -> int:
    """Run one of the records commands as `autograder` would."""
    parser = argparse.ArgumentParser(prog="autograder")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_export_writes_csv_and_junit_from_a_batch_folder(tmp_path, alice, bob):
    out = batch_folder(tmp_path / "graded", alice, bob)
    assert cli("export", "--from", str(out), "--assignment", A,
               "--csv", str(tmp_path / "g.csv"), "--junit", str(tmp_path / "j.xml")) == 0
    assert (tmp_path / "g.csv").read_text() == to_csv([alice, bob])
    assert len(ET.parse(tmp_path / "j.xml").getroot().findall("testsuite")) == 2


@pytest.mark.parametrize("case, expected", [
    ("missing folder", "does not exist"),
    ("empty folder", "holds no <student>/results.json"),
    ("unknown assignment", "Unknown assignment 'nope'"),
    ("other assignment", "no results for 'mnist_cnn', only for linear_grading"),
    ("no output", "nothing to export"),
])
def test_export_rejects_bad_input_with_exit_code_2_and_a_message(case, expected, tmp_path, alice, capsys):
    out = tmp_path / "graded"
    csv_args = ["--csv", str(tmp_path / "g.csv")]
    argv = {
        "missing folder": lambda: ["--from", str(out), *csv_args],
        "empty folder": lambda: ["--from", str(tmp_path), *csv_args],
        "unknown assignment": lambda: ["--from", str(batch_folder(out, alice)), "--assignment", "nope", *csv_args],
        "other assignment": lambda: ["--from", str(batch_folder(out, alice)), "--assignment", "mnist_cnn", *csv_args],
        "no output": lambda: ["--from", str(tmp_path)],
    }[case]()
    assert cli("export", *argv) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "g.csv").exists()


def test_export_warns_about_an_unreadable_result_and_exports_the_rest(tmp_path, alice, capsys):
    out = batch_folder(tmp_path / "graded", alice)
    (out / "carol").mkdir()
    (out / "carol" / "results.json").write_text("")
    assert cli("export", "--from", str(out), "--csv", str(tmp_path / "g.csv")) == 0
    assert str(out / "carol" / "results.json") in capsys.readouterr().err
    assert len((tmp_path / "g.csv").read_text().splitlines()) == 2


def test_gradescope_bundle_command_writes_the_zip_or_exits_2(tmp_path, capsys):
    assert cli("gradescope-bundle", "--assignment", A, "-o", str(tmp_path / "b.zip")) == 0
    assert "setup.sh" in zipfile.ZipFile(tmp_path / "b.zip").namelist()
    assert cli("gradescope-bundle", "--assignment", "nope", "-o", str(tmp_path / "c.zip")) == 2
    assert "Unknown assignment 'nope'" in capsys.readouterr().err
    assert cli("gradescope-bundle", "--assignment", A, "-o", str(tmp_path)) == 2
    assert "is a folder" in capsys.readouterr().err
