"""Grading beyond one machine: a Dask cluster grades a class as the local pool
does, a worker killed mid-task costs a retry and never a grade, and a class
graded in shards merges back into one class.

To keep CI short, the class is graded twice in all: once by the local pool,
once by a real ``LocalCluster`` of two worker processes, as two shards run
side by side (one of whose workers is killed mid-task); the other tests read
those two runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from autograder import cli
from autograder.course import load_assignment
from autograder.engine import batch
from conftest import REPO

distributed = pytest.importorskip("distributed")

A = "linear_grading"
STUDENTS = ["alice", "carol", "dan", "eve"]
BY_DESIGN = ("timings", "execution_time")
"""results.json keys that differ between two gradings of one notebook by design."""


def autograder(capsys, *args) -> tuple[int, str]:
    """Run the command line in this process: its exit code and standard error."""
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def comparable(results_file: Path) -> str:
    """results.json without what differs by design: times, and the paths the
    notebook had where it was graded."""
    data = {k: v for k, v in json.loads(results_file.read_text()).items() if k not in BY_DESIGN}
    return re.sub(r"/\S*/(\w+\.ipynb)", r"\1", json.dumps(data, indent=2))


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory) -> Path:
    """One notebook per student: the reference solution, the blank release, a
    file that is not JSON and JSON that is not a notebook."""
    folder = tmp_path_factory.mktemp("class")
    shutil.copy(REPO / "solutions" / A / f"{A}.ipynb", folder / "alice.ipynb")
    shutil.copy(REPO / "assignments" / A / f"{A}.ipynb", folder / "carol.ipynb")
    (folder / "dan.ipynb").write_text('{"cells": [')
    (folder / "eve.ipynb").write_text('{"greeting": "hello"}')
    return folder


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield cluster, client


@pytest.fixture(scope="module")
def runs(class_folder, cluster, tmp_path_factory):
    """The class graded twice at once: by the local pool, and on the cluster
    as two shards side by side, where the worker grading carol is killed
    with SIGKILL a moment into her task."""
    local_cluster, client = cluster
    assignment = load_assignment(A)
    local = tmp_path_factory.mktemp("local")
    shards = {k: tmp_path_factory.mktemp(f"shard{k}") for k in (1, 2)}
    summaries, progress = {}, []

    def grade_locally():
        summaries["local"] = batch.grade_batch(class_folder, assignment, output_dir=local, workers=2)

    def grade_shard(k):
        summaries[k] = batch.grade_batch(class_folder, assignment, output_dir=shards[k],
                                         cluster=local_cluster.scheduler_address,
                                         shard=batch.Shard(k, 2), progress=progress.append)
        batch.write_summary(shards[k], summaries[k], A)

    threads = [threading.Thread(target=grade_locally)]
    threads += [threading.Thread(target=grade_shard, args=(k,)) for k in shards]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if any("grade-carol" in k for k in keys)]
        if busy:
            break
        time.sleep(0.1)
    time.sleep(1)  # her grading child has started
    killed = client.run(os.getpid)[busy[0]]
    os.kill(killed, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=300)
    return {"local": local, "shards": shards, "summaries": summaries, "progress": progress,
            "killed": killed}


@pytest.fixture(scope="module")
def local_run(runs) -> Path:
    assert sorted(runs["summaries"]["local"].graded) == STUDENTS
    return runs["local"]


@pytest.fixture(scope="module")
def cluster_run(runs):
    return runs["shards"], runs["summaries"], runs["progress"], runs["killed"]


@pytest.mark.slow
def test_the_cluster_grades_as_the_local_pool(local_run, cluster_run, tmp_path):
    shards, summaries, _, _ = cluster_run
    graded = {p.parent.name: p for k in shards for p in shards[k].glob("*/results.json")}
    assert sorted(graded) == STUDENTS
    for student, results_file in graded.items():
        assert comparable(results_file) == comparable(local_run / student / "results.json"), student
        assert (results_file.parent / "report.html").is_file()
    scores = {s: json.loads(p.read_text())["score"] for s, p in graded.items()}
    assert scores == {"alice": 10.0, "carol": 0.0, "dan": 0.0, "eve": 0.0}
    assert sorted(os.listdir(graded["alice"].parent / "feedback")) == \
        sorted(os.listdir(local_run / "alice" / "feedback"))


@pytest.mark.slow
def test_a_worker_killed_mid_task_costs_a_retry_and_every_student_is_graded_once(cluster, cluster_run):
    _, client = cluster
    _, summaries, progress, killed = cluster_run
    assert killed not in client.run(os.getpid).values(), "the worker was meant to be killed"
    graded = summaries[1].graded + summaries[2].graded
    assert sorted(graded) == STUDENTS, "each student graded exactly once"
    assert not summaries[1].failed and not summaries[2].failed
    assert len([line for line in progress if line.startswith("[")]) == 4
    assert sum(line.startswith("Dask dashboard: http") for line in progress) == 2


@pytest.mark.slow
def test_merged_shards_export_as_one_run(local_run, cluster_run, tmp_path, capsys):
    shards, _, _, _ = cluster_run
    merged = tmp_path / "merged"
    code, err = autograder(capsys, "merge", "--from", shards[1], shards[2], "--assignment", A,
                           "--output-dir", merged)
    assert code == 0, err
    summary = json.loads((merged / "batch_summary.json").read_text())
    assert sorted(summary["graded"]) == STUDENTS and summary["mean_score"] == 2.5
    assert (merged / "class_summary.html").is_file()
    for out in (merged, local_run):
        assert autograder(capsys, "export", "--from", out, "--csv", out / "grades.csv")[0] == 0
    assert (merged / "grades.csv").read_text() == (local_run / "grades.csv").read_text()


@pytest.mark.slow
def test_a_rerun_on_the_cluster_skips_everything_graded(class_folder, cluster, cluster_run, tmp_path):
    local_cluster, _ = cluster
    shards, _, _, _ = cluster_run
    out = tmp_path / "out"
    for k in shards:
        shutil.copytree(shards[k], out, dirs_exist_ok=True)
    progress = []
    summary = batch.grade_batch(class_folder, load_assignment(A), output_dir=out,
                                cluster=local_cluster.scheduler_address, progress=progress.append)
    assert sorted(summary.skipped) == STUDENTS and summary.graded == [] and not summary.failed
    assert progress[0] == "skipping 4 already graded (use --force to regrade)"


def test_merge_refuses_a_student_graded_differently_in_two_shards(tmp_path):
    shards = []
    for k, digest in enumerate(("aaaa", "bbbb")):
        shard = tmp_path / f"shard{k}"
        (shard / "zoe").mkdir(parents=True)
        (shard / "zoe" / "report.html").write_text("<html></html>")
        (shard / "zoe" / "results.json").write_text(json.dumps(
            {"assignment": A, "score": 1.0, "max_score": 10.0,
             "fingerprint": {"submission_sha256": digest, "suite_version": "v"}}))
        (shard / "batch_summary.json").write_text(json.dumps(
            {"graded": ["zoe"], "skipped": [], "failed": []}))
        shards.append(shard)
    with pytest.raises(batch.MergeError, match="zoe was graded in both .* different fingerprints"):
        batch.merge_batches(shards, tmp_path / "merged", A)
    assert not (tmp_path / "merged" / "zoe").exists()
    with pytest.raises(batch.MergeError, match="is not the output folder of a batch"):
        batch.merge_batches([tmp_path], tmp_path / "merged", A)


@pytest.mark.parametrize("count", range(1, 8))
def test_every_student_lands_in_exactly_one_shard(count):
    names = [f"student{i:02d}" for i in range(23)] + ["Zoë", "adam"]
    parts = [batch.Shard(k, count).students(names) for k in range(1, count + 1)]
    assert set().union(*parts) == set(names)
    assert sum(len(p) for p in parts) == len(names)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parts == [batch.parse_shard(f"{k}/{count}").students(reversed(names))
                     for k in range(1, count + 1)], "the same shards whatever the order found"


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "1/2/3", "a/b", "1-2", "", " 1/2", "-1/2", "01/2"])
def test_a_shard_that_is_not_k_of_n_is_refused(text):
    with pytest.raises(batch.ShardError, match="write K/N with whole numbers 1 <= K <= N"):
        batch.parse_shard(text)


def test_the_command_line_refuses_a_bad_shard_and_cluster_options(class_folder, tmp_path, capsys):
    def refused(*args):
        code, err = autograder(capsys, "grade", *args, "--assignment", A, "--output-dir", tmp_path / "out")
        assert code == 2
        return err

    assert "--shard '3/2' is not valid" in refused(class_folder, "--shard", "3/2")
    assert "grade a folder of submissions" in refused(class_folder / "dan.ipynb", "--shard", "1/2")
    assert "--workers sizes the local pool" in refused(class_folder, "--cluster", "local:2", "--workers", "2")
    assert "--cluster 'scheduler:8786' is not valid" in refused(class_folder, "--cluster", "scheduler:8786")
    assert not (tmp_path / "out").exists(), "refused before anything was graded or written"


def test_workers_that_cannot_grade_are_named_before_anything_is_graded(cluster, tmp_path):
    from autograder.engine import cluster as cluster_engine

    _, client = cluster
    missing = str(tmp_path / "no-data-here")

    def set_environ(values):
        """On a worker: set (or, for None, unset) variables; what they were."""
        previous = {name: os.environ.get(name) for name in values}
        for name, value in values.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        return previous

    previous = client.run(set_environ, {"AUTOGRADER_DATA_DIR": missing, "AUTOGRADER_OFFLINE": "1"})
    try:
        with pytest.raises(cluster_engine.ClusterError) as refused:
            cluster_engine.check_workers(client, load_assignment("mnist_mlp"), "auto")
    finally:
        for worker, values in previous.items():
            client.run(set_environ, values, workers=[worker])
    message = str(refused.value)
    assert message.startswith("2 Dask worker(s) cannot grade 'mnist_mlp'; nothing was graded")
    assert all(worker in message for worker in previous) and "dataset mnist" in message
    cluster_engine.check_workers(client, load_assignment(A), "auto")  # linear_grading's data is in the kit
