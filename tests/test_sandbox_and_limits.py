"""Mechanics of the confinement, apart from any one submission: what the
sandbox shows and hides, what the kernel inherits, and how the trusted side
reads what the kernel left behind. Submissions that attack these defences
are the corpus in tests/test_adversarial.py."""

import json
import os
import subprocess

import numpy as np
import pytest

from autograder.course import load_assignment
from autograder.engine import sandbox
from autograder.engine.evaluate import run_suite
from autograder.engine.execute import kernel_env
from autograder.engine.grade import grade_submission
from autograder.results import Status
from conftest import LINEAR_SUMMARY, by_name, make_submission

A = "linear_grading"
needs_bwrap = pytest.mark.skipif(
    sandbox.bwrap_problem() is not None, reason=f"no sandbox here: {sandbox.bwrap_problem()}"
)


def in_sandbox(tmp_path, script, **paths):
    """Run a shell ``script`` under the engine's bwrap prefix."""
    command = sandbox.bwrap_command(**paths)
    return subprocess.run([*command, "sh", "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


@needs_bwrap
def test_hidden_paths_are_empty_and_read_only_and_what_is_needed_inside_comes_back(tmp_path):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    (course / "solutions" / "answer.txt").write_text("the answer")
    (course / "kit" / "suites").mkdir(parents=True)
    (course / "kit" / "suites" / "test_secret.py").write_text("secret")
    (course / "kit" / "loader.py").write_text("needed\n")
    work = tmp_path / "work"
    work.mkdir()
    script = (
        f"echo course:; ls -A {course}; echo kit:; cat {course / 'kit' / 'loader.py'}; "
        f"echo suites:; ls -A {course / 'kit' / 'suites'}; echo writes:; "
        f"touch {course / 'x'} 2>/dev/null && echo course; "
        f"touch {course / 'kit' / 'suites' / 'x'} 2>/dev/null && echo suites; "
        f"touch {course / 'kit' / 'x'} 2>/dev/null && echo kit; "
        f"touch {work / 'x'} && echo work"
    )
    # As the engine does: the course hidden, the kit bound back, its suites hidden
    # again; the inner path first, as a caller may list them in any order.
    done = in_sandbox(tmp_path, script, writable=[work], readable=[course / "kit"],
                      hidden=[course / "kit" / "suites", course, course / "solutions"])
    assert done.stdout.split() == [
        "course:", "kit", "kit:", "needed", "suites:", "writes:", "work",
    ], done.stderr


@needs_bwrap
def test_the_home_directory_is_hidden_and_tmp_is_private_and_capped(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("password")
    (tmp_path / "beside-home.txt").write_text("visible\n")
    monkeypatch.setenv("HOME", str(home))
    done = in_sandbox(
        tmp_path,
        f"cat {tmp_path / 'beside-home.txt'}; ls -A {home}; echo ---; "
        "head -c 3000000 /dev/zero > /tmp/fill 2>/dev/null || echo tmp-full; "
        "head -c 3000000 /dev/zero > /dev/shm/fill 2>/dev/null || echo shm-full",
        # tmp_path lies under the private /tmp: bind it back, home and all.
        writable=[], readable=[tmp_path], hidden=[], tmpfs_bytes=2_000_000,
    )
    assert done.stdout.split() == ["visible", "---", "tmp-full", "shm-full"], done.stderr


def test_the_kernel_inherits_only_the_allowed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_API_TOKEN", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", "/data")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
    env = kernel_env(tmp_path)
    assert "secret" not in env.values()
    assert env["AUTOGRADER_DATA_DIR"] == "/data" and env["TF_NUM_INTEROP_THREADS"] == "1"
    assert env["PATH"] == os.environ["PATH"] and env["IPYTHONDIR"].startswith(str(tmp_path))


SUITE = '''
import pytest

@pytest.mark.parametrize("name", ["real", "linked", "fifo", "huge"])
def test_reads(artifacts, name):
    assert artifacts.array(name).tolist() == [1, 2, 3]
'''


def test_the_suite_reads_only_regular_files_and_never_writes_through_links(tmp_path, monkeypatch):
    import autograder.engine.evaluate as evaluate

    monkeypatch.setattr(evaluate, "MAX_ARTIFACT_BYTES", 10_000)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_reads.py").write_text(SUITE)
    outside = tmp_path / "outside.npy"
    np.save(outside, np.array([1, 2, 3]))
    work = tmp_path / "work"
    artifacts = work / "artifacts"
    artifacts.mkdir(parents=True)
    np.save(artifacts / "real.npy", np.array([1, 2, 3]))
    (artifacts / "linked.npy").symlink_to(outside)
    os.mkfifo(artifacts / "fifo.npy")
    np.save(artifacts / "huge.npy", np.zeros(100_000))
    # What a kernel could plant where the suite's process used to start.
    (work / "pytest.py").write_text("raise SystemExit('planted module ran')")
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched")
    (work / "report.json").symlink_to(canary)

    checks = {c.name: c for c in run_suite(suite, artifacts, work / "report.json", timeout=120)}
    assert checks["test_reads[real]"].status is Status.PASS
    assert "was not read because it is a symbolic link" in checks["test_reads[linked]"].output
    assert "was not read because it is not a regular file" in checks["test_reads[fifo]"].output
    assert "over the grader's limit" in checks["test_reads[huge]"].output
    assert canary.read_text() == "untouched"
    assert json.loads((work / "report.json").read_text())["tests"]


@pytest.mark.slow
@needs_bwrap
def test_datasets_stay_readable_even_under_tmp_and_through_a_link(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (real / "marker.txt").write_text("visible")
    data = tmp_path / "data"
    data.symlink_to(real)
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(data))
    code = f"print(open({str(data / 'marker.txt')!r}).read())\n" + LINEAR_SUMMARY
    notebook = make_submission(tmp_path / "sub" / f"{A}.ipynb", A, {"summary": code})
    workdir = tmp_path / "work"
    result = grade_submission(notebook, load_assignment(A), workdir=workdir, sandbox_mode="bwrap")
    assert "visible" in (workdir / "executed.ipynb").read_text()
    assert by_name(result)["test_data_summary"].status is Status.PASS
