"""The warm evaluator: the hidden suite runs in a forked child of a zygote
that imported Keras, pytest and the kit once, with the same results as a
cold pytest process, no state carried from one evaluation to the next, and
the cold process as the fallback whenever the zygote fails."""

import json
import os
import signal
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from autograder.course import load_assignment
from autograder.engine import evaluate, gpu, warm
from autograder.engine.evaluate import TrustedSuite, run_suite, tree_digest
from autograder.engine.grade import grade_submission
from autograder.results import Status
from conftest import worker_job

A = "linear_grading"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, linear_partial_submission):
    """What a kernel exported for a submission that earns 6.5 of 10."""
    workdir = tmp_path_factory.mktemp("warm") / "work"
    result = grade_submission(linear_partial_submission, load_assignment(A), workdir=workdir)
    assert result.score == 6.5
    return workdir / "artifacts"


@pytest.fixture
def suite():
    with TrustedSuite(load_assignment(A).suite_dir, warm_env=gpu.CPU_ONLY_ENV) as trusted:
        yield trusted


def _outcome(checks):
    return [(c.name, c.score, c.max_score, c.status, c.output) for c in checks]


def test_a_warm_evaluation_scores_as_a_cold_one_and_starts_no_pytest_process(
        suite, artifacts, tmp_path, monkeypatch):
    cold = run_suite(suite.suite_dir, artifacts, tmp_path / "cold.json", timeout=300,
                     env={**suite.env, **gpu.CPU_ONLY_ENV})
    started = []
    monkeypatch.setattr(evaluate.subprocess, "run", lambda *a, **k: started.append(a))
    warmed = suite.run(artifacts, tmp_path / "warm.json", timeout=300, env=gpu.CPU_ONLY_ENV)
    assert _outcome(warmed) == _outcome(cold)
    assert sum(c.score for c in warmed) == 6.5 and started == []


def test_one_zygote_serves_every_grading_of_the_same_kit(suite):
    assignment = load_assignment(A)
    with TrustedSuite(assignment.suite_dir, warm_env=gpu.CPU_ONLY_ENV) as second:
        assert second.warm is suite.warm and second.plan == suite.plan
    # Another value read when the backend is imported: another zygote.
    with TrustedSuite(assignment.suite_dir, warm_env={**gpu.CPU_ONLY_ENV, "TF_NUM_INTEROP_THREADS": "1"}) as other:
        assert other.warm is not suite.warm


def _suite_and_zygote(tmp_path, name: str, source: str):
    """A one-file suite ``name`` and a zygote for a copy of the kit."""
    suite_dir = tmp_path / "suite"
    suite_dir.mkdir()
    (suite_dir / name).write_text(source)
    kit = tmp_path / "kit"
    with TrustedSuite(load_assignment(A).suite_dir) as trusted:
        evaluate._copy_tree(trusted.kit_dir, kit)
    return suite_dir, warm.evaluator(kit, tree_digest(kit), evaluate._suite_env(gpu.CPU_ONLY_ENV))


def test_no_state_crosses_from_one_evaluation_to_the_next(tmp_path):
    # Each evaluation marks a module the zygote imported; the next must find it unmarked.
    suite_dir, zygote = _suite_and_zygote(tmp_path, "test_fresh.py", (
        "import autograder.checks as checks\n\n"
        "def test_fresh():\n"
        "    assert not hasattr(checks, 'marked_by_an_earlier_student')\n"
        "    checks.marked_by_an_earlier_student = True\n"
    ))
    for run in range(2):
        artifacts = tmp_path / f"artifacts{run}"
        artifacts.mkdir()
        [check] = run_suite(suite_dir, artifacts, tmp_path / f"report{run}.json", timeout=120,
                            warm=zygote)
        assert check.status is Status.PASS, check.output
    assert zygote.process.poll() is None


@pytest.mark.parametrize("evaluator", ["warm", "cold"])
def test_no_installed_pytest_plugin_runs_in_the_trusted_evaluator(tmp_path, evaluator):
    installed = sorted(e.name for e in entry_points(group="pytest11"))
    if not installed:
        pytest.skip("no pytest plugin is installed here to leave out")
    suite_dir, zygote = _suite_and_zygote(tmp_path, "test_plugins.py", (
        "def test_only_the_kits_plugin(pytestconfig):\n"
        f"    loaded = [n for n in {installed!r} if pytestconfig.pluginmanager.has_plugin(n)]\n"
        "    assert loaded == [], loaded\n"
        "    assert pytestconfig.pluginmanager.has_plugin('autograder.suite_plugin')\n"
    ))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    [check] = run_suite(suite_dir, artifacts, tmp_path / "report.json", timeout=120,
                        warm=zygote if evaluator == "warm" else None)
    assert check.status is Status.PASS, check.output


def test_a_zygote_that_died_is_discarded_and_the_suite_runs_cold(suite, artifacts, tmp_path):
    dead = suite.warm
    dead.process.send_signal(signal.SIGKILL)
    dead.process.wait()
    checks = suite.run(artifacts, tmp_path / "report.json", timeout=300, env=gpu.CPU_ONLY_ENV)
    assert sum(c.score for c in checks) == 6.5
    assert dead not in warm._evaluators.values() and not Path(dead.private).exists()


def test_an_evaluation_past_its_time_is_killed_with_all_it_started(tmp_path):
    # The child names this test's folder, so that no other test's sleeper is counted.
    marker = f"sleeper-of-{tmp_path}"
    suite_dir, zygote = _suite_and_zygote(tmp_path, "test_slow.py", (
        "import subprocess, sys, time\n\n"
        "def test_slow():\n"
        f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])\n"
        "    time.sleep(300)\n"
    ))
    env = dict(os.environ)
    zygote.run(["--version"], cwd=tmp_path, env=env, timeout=120)  # ready
    code, _ = zygote.run([str(suite_dir), "-p", "no:cacheprovider"], cwd=tmp_path, env=env, timeout=3)
    assert code is None
    sleepers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert sleepers.strip() == "", "the evaluation's own children outlived it"
    assert zygote.run(["--version"], cwd=tmp_path, env=env, timeout=60)[0] == 0  # still serving


def test_a_batch_worker_stopped_mid_submission_is_replaced_for_the_next(tmp_path, linear_partial_submission):
    from autograder.engine.worker import Worker

    def job(student):
        return worker_job(A, linear_partial_submission, tmp_path / student)

    worker = Worker()
    try:
        assert worker.grade(job("slow"), timeout=1) == "grading took longer than 1 s and was stopped"
        assert worker.process is None and not (tmp_path / "slow" / "results.json").exists()
        assert worker.grade(job("next"), timeout=300) == ""
        first = worker.process.pid
        assert json.loads((tmp_path / "next" / "results.json").read_text())["score"] == 6.5
        assert worker.grade(job("third"), timeout=300) == "" and worker.process.pid == first
    finally:
        worker.close()
