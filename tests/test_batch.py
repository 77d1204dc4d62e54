"""Grading a class: every submission in a folder, in parallel, resumable,
with one folder of results per student and a summary at the end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.course import load_assignment
from autograder.engine import batch, record, sandbox
from conftest import LINEAR_HAND_SET_WEIGHTS, LINEAR_MODEL, LINEAR_SUMMARY, REPO, make_submission

pytestmark = pytest.mark.slow
A = "linear_grading"
SOLUTION = REPO / "solutions" / A / f"{A}.ipynb"


def autograder(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=900, **kw)


def submit(root: Path, student: str, source: Path | None = None, **answers) -> Path:
    """Place a submission where nbgrader's ``collect`` puts it."""
    path = root / "submitted" / student / A / f"{A}.ipynb"
    if source is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, path)
        return path
    return make_submission(path, A, answers)


ALICE_SUBMITTED = "2026-03-14 16:59:00.000000 UTC"


def results(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/results.json")}


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    """Four students: a full solution, a partial one, a blank release, a
    submission that is not a notebook, and one student who handed in two
    notebooks with the wrong names. One of them pokes at classmates' work."""
    root = tmp_path_factory.mktemp("course")
    # As nbgrader's collect leaves it: when alice submitted, beside her notebook.
    (submit(root, "alice", SOLUTION).parent / "timestamp.txt").write_text(ALICE_SUBMITTED + "\n")
    # Earns the summary points only if the kernel cannot see alice's notebook.
    peek = (f"from pathlib import Path\n{LINEAR_SUMMARY}\n"
            f"if Path({str(root / 'submitted' / 'alice')!r}).exists(): x_mean = None")
    submit(root, "bob", summary=peek, build_model=LINEAR_MODEL, train=LINEAR_HAND_SET_WEIGHTS)
    submit(root, "carol", REPO / "assignments" / A / f"{A}.ipynb")
    broken = root / "submitted" / "dan" / A / f"{A}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [')
    for name in ("draft.ipynb", "final.ipynb"):
        submit(root, "erin", SOLUTION).rename(root / "submitted" / "erin" / A / name)
    return root


@pytest.fixture(scope="module")
def first_run(class_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("graded")
    completed = autograder("grade", class_folder, "--assignment", A, "--output-dir", out,
                           "--workers", 2)
    return out, completed


def test_every_student_gets_a_results_folder(first_run):
    out, completed = first_run
    graded = results(out)
    assert {s: r["score"] for s, r in graded.items()} == {
        "alice": 10.0, "bob": 6.5, "carol": 0.0, "dan": 0.0}
    assert all(r["student"] == s for s, r in graded.items())
    assert {s: r["submitted_at"] for s, r in graded.items()} == {
        "alice": ALICE_SUBMITTED, "bob": "", "carol": "", "dan": ""}
    for student in graded:
        assert (out / student / "report.html").is_file()
    assert "not valid notebook JSON" in graded["dan"]["notes"][0]


@pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason="only the sandbox hides classmates' work")
def test_a_kernel_cannot_see_classmates_submissions(first_run):
    out, _ = first_run
    summary_check = next(t for t in results(out)["bob"]["tests"] if t["name"] == "test_data_summary")
    assert summary_check["status"] == "pass"


def test_an_unclear_submission_is_reported_and_the_batch_goes_on(first_run):
    out, completed = first_run
    assert completed.returncode == 1, completed.stderr
    assert "failed to grade 1" in completed.stdout
    assert "erin" in completed.stdout and "none named linear_grading.ipynb" in completed.stdout
    assert not (out / "erin").exists()
    summary = json.loads((out / "batch_summary.json").read_text())
    assert set(summary["graded"]) == {"alice", "bob", "carol", "dan"}
    assert summary["mean_score"] == pytest.approx((10 + 6.5) / 4)
    assert summary["median_score"] == pytest.approx(3.25)
    assert [p["student"] for p in summary["failed"]] == ["erin"]


def test_progress_is_reported_per_submission(first_run):
    _, completed = first_run
    lines = [l for l in completed.stderr.splitlines() if l.startswith("[")]
    assert len(lines) == 4
    assert lines[-1].startswith("[" + "#" * 24 + "] 4/4")


def test_a_rerun_skips_what_is_already_graded_and_regrades_what_changed(first_run, class_folder):
    out, _ = first_run
    before = results(out)
    submit(class_folder, "carol", summary=LINEAR_SUMMARY)
    completed = autograder("grade", class_folder, "--assignment", A, "--output-dir", out)
    assert "skipping 3 already graded" in completed.stderr
    assert "graded 1, skipped 3" in completed.stdout
    after = results(out)
    assert after["carol"]["score"] == 1.0
    assert {s: after[s] for s in ("alice", "bob", "dan")} == {
        s: before[s] for s in ("alice", "bob", "dan")}


def test_force_regrades(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    shutil.copy(REPO / "assignments" / A / f"{A}.ipynb", folder / "zoe.ipynb")
    out = tmp_path / "out"
    autograder("grade", folder, "--assignment", A, "--output-dir", out)
    first = (out / "zoe" / "results.json").stat().st_mtime_ns
    again = autograder("grade", folder, "--assignment", A, "--output-dir", out, "--force")
    assert "graded 1, skipped 0" in again.stdout
    assert (out / "zoe" / "results.json").stat().st_mtime_ns > first


def test_a_batch_killed_midway_loses_nothing_and_the_next_run_finishes(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for student in ("p1", "p2", "p3"):
        shutil.copy(REPO / "assignments" / A / f"{A}.ipynb", folder / f"{student}.ipynb")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autograder.cli", "grade", str(folder), "--assignment", A,
               "--output-dir", str(out), "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("*/results.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = results(out)
    assert 1 <= len(finished) < 3, "the batch was meant to be killed half-way"
    assert all(r["score"] == 0.0 for r in finished.values())

    completed = autograder("grade", folder, "--assignment", A, "--output-dir", out)
    assert f"skipped {len(finished)}" in completed.stdout
    assert set(results(out)) == {"p1", "p2", "p3"}


def test_discover_reads_a_flat_folder_one_notebook_per_student(tmp_path):
    for name in ("amy.ipynb", "ben.ipynb", "notes.txt"):
        (tmp_path / name).write_text("{}")
    found, problems = batch.discover(tmp_path, A)
    assert [(s.student, s.path.name) for s in found] == [("amy", "amy.ipynb"), ("ben", "ben.ipynb")]
    assert problems == []


def test_an_empty_folder_is_an_error_that_says_what_was_expected(tmp_path):
    completed = autograder("grade", tmp_path, "--assignment", A)
    assert completed.returncode == 2
    assert f"holds no submissions of '{A}'" in completed.stderr
    assert f"<student>/{A}/*.ipynb" in completed.stderr


def test_the_fingerprint_changes_with_the_submission_and_the_suite(tmp_path, monkeypatch):
    notebook = tmp_path / "n.ipynb"
    notebook.write_text("{}")
    assignment = load_assignment(A)
    first = record.fingerprint(notebook, assignment)
    assert record.fingerprint(notebook, assignment) == first
    notebook.write_text("{ }")
    assert record.fingerprint(notebook, assignment)["submission_sha256"] != first["submission_sha256"]
    stricter = load_assignment(A, cell_timeout=5)
    assert record.suite_version(stricter) != first["suite_version"]
