"""Kernels started ahead of need: a batch's worker opens its next submission
(trusted suite copy, data view, work directory, kernel) while the previous
one is evaluated, then grades it with that kernel, with the same results."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from autograder.course import load_assignment
from autograder.engine import batch, execute, gpu
from autograder.engine.grade import Grading
from autograder.engine.worker import READY, Job, Worker, WorkerLost
from conftest import REPO, worker_job

A = "linear_grading"
SOLUTION = REPO / "solutions" / A / f"{A}.ipynb"
BLANK = REPO / "assignments" / A / f"{A}.ipynb"


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def new_children(before: set[int]) -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if p.pid not in before]


def kernels_below(pid: int) -> list[psutil.Process]:
    """The kernel processes below ``pid``."""
    found = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:  # one that ended meanwhile
            pass
    return found


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---------------------------------------------------------------- the worker


def test_a_worker_starts_the_next_kernel_while_the_previous_submission_is_evaluated(
        tmp_path, linear_partial_submission):
    worker = Worker()
    deadline = time.monotonic() + 300
    try:
        worker.send(worker_job(A, linear_partial_submission, tmp_path / "first"))
        assert worker.receive(deadline, budget=300) == READY  # its notebook has run
        worker.send(worker_job(A, linear_partial_submission, tmp_path / "second"))
        assert worker.receive(deadline, budget=300) == {}  # the first one's answer
        first_pid = worker.process.pid
        second = [worker.receive(deadline, budget=300) for _ in range(2)]
        assert second == [READY, {}]
        assert worker.process.pid == first_pid
    finally:
        worker.close()
    first, second = results(tmp_path / "first"), results(tmp_path / "second")
    assert first["score"] == second["score"] == 6.5
    assert "kernel_start_ahead" not in first["timings"]
    # The second kernel started before its turn, and its start still counts.
    assert 0 < second["timings"]["kernel_start_ahead"] == second["timings"]["kernel_start"]
    assert not any("died" in note for note in second["notes"])


def test_a_worker_killed_holding_two_jobs_writes_nothing_more_and_leaves_no_kernel(tmp_path, linear_partial_submission):
    worker = Worker()
    deadline = time.monotonic() + 300
    try:
        worker.send(worker_job(A, linear_partial_submission, tmp_path / "first"))
        assert worker.receive(deadline, budget=300) == READY
        workers_group = worker.process.pid
        first = kernels_below(workers_group)  # stopped by now, if not yet reaped
        worker.send(worker_job(A, BLANK, tmp_path / "second"))
        kernels = []
        while not kernels and time.monotonic() < deadline:  # the second one's, started ahead
            kernels = [k for k in kernels_below(workers_group) if k not in first]
            time.sleep(0.1)
        assert kernels
        os.killpg(workers_group, signal.SIGKILL)
        with pytest.raises(WorkerLost, match="exited with code -9"):
            while worker.receive(deadline, budget=300) in ({}, READY):
                pass
        assert worker.process is None
        for kernel in kernels:
            psutil.wait_procs([kernel], timeout=10)
            assert gone(kernel), "a kernel outlived its worker"
        assert not (tmp_path / "second" / "results.json").exists()
    finally:
        worker.close()


# ---------------------------------------------------------------- a grading opened ahead


def test_a_kernel_started_ahead_that_died_idle_is_replaced_and_no_cell_is_skipped(
        linear_partial_submission):
    with Grading(linear_partial_submission, load_assignment(A)) as grading:
        before = {p.pid for p in psutil.Process().children()}
        grading.start_kernel_ahead()
        [kernel] = new_children(before)
        execute.kill_group(kernel)
        psutil.wait_procs([kernel], timeout=10)
        result = grading.finish()
    assert result.score == 6.5
    assert not any("died" in note or "skipped" in note for note in result.notes)
    assert "kernel_start_ahead" not in result.timings  # a new kernel ran the notebook


def test_a_kernel_that_cannot_start_ahead_fails_nothing_early(linear_partial_submission, monkeypatch):
    def cannot_start(self):
        raise execute.KernelStartError("no kernel for now")

    with Grading(linear_partial_submission, load_assignment(A)) as grading:
        with monkeypatch.context() as patched:
            patched.setattr(execute.Kernels, "start_ahead", cannot_start)
            grading.start_kernel_ahead()
        result = grading.finish()
    assert result.score == 6.5
    assert "kernel_start_ahead" not in result.timings and result.timings["kernel_start"] > 0


def test_a_grading_abandoned_after_its_kernel_started_leaves_nothing_behind(linear_partial_submission):
    grading = Grading(linear_partial_submission, load_assignment(A)).open()
    before = {p.pid for p in psutil.Process().children()}
    grading.start_kernel_ahead()
    [kernel] = new_children(before)
    held = [grading.workdir, grading.private, grading.suite.private]
    assert all(path.exists() for path in held)
    grading.close()
    psutil.wait_procs([kernel], timeout=10)
    assert gone(kernel)
    assert not any(path.exists() for path in held)


# ---------------------------------------------------------------- GPU slots


def test_a_slot_can_be_asked_for_without_waiting():
    slots = gpu.GpuSlots({0: 1, 1: 1})
    first, second = slots.acquire(wait=False), slots.acquire(wait=False)
    assert {first.gpu_index, second.gpu_index} == {0, 1}
    started = time.monotonic()
    assert slots.acquire(wait=False) is None
    assert time.monotonic() - started < 1
    slots.release(second)
    assert slots.acquire(wait=False) == second
    assert gpu.GpuSlots({}).acquire(wait=False) == gpu.Slot(None)  # no GPU: never short


# ---------------------------------------------------------------- the batch


class ScriptedWorker:
    """A stand-in for :class:`Worker`, run by the batch's thread: each job
    says READY once while it is the only one held, then is answered (its
    results.json written). With ``lose``, the first process, once it holds
    a job handed ahead, exits instead."""

    lose = False

    def __init__(self):
        self.processes: list[list[str]] = []
        """The students each process (started by a send after a loss, as Worker does) was handed."""
        self.running = False
        self.held: list[Job] = []
        self.most_held = 0
        self.readied: set[str] = set()
        self.gpus: list[tuple[int | None, int | None]] = []

    def send(self, job: Job) -> None:
        if not self.running:
            self.processes.append([])
            self.running = True
        self.processes[-1].append(job.student)
        self.held.append(job)
        self.most_held = max(self.most_held, len(self.held))
        self.gpus.append((job.gpu_index, job.per_gpu))

    def receive(self, deadline: float, *, budget: float) -> dict:
        head = self.held[0]
        if len(self.held) == 1 and head.student not in self.readied:
            self.readied.add(head.student)
            return READY
        if ScriptedWorker.lose and len(self.processes) == 1:
            self.running, self.held = False, []
            raise WorkerLost("the grading worker exited with code -9")
        self.held.pop(0)
        Path(head.out).mkdir(parents=True)
        (Path(head.out) / "results.json").write_text(json.dumps({"score": 1.0}))
        return {}

    def close(self) -> None:
        pass


@pytest.fixture
def scripted(monkeypatch):
    """The scripted workers the batch made."""
    made = []

    def make():
        made.append(ScriptedWorker())
        return made[-1]

    monkeypatch.setattr(batch, "Worker", make)
    return made


def run_locally(tmp_path: Path, students: list[str], gpu_capacity: dict[int, int]) -> dict:
    todo = [batch.Submission(s, tmp_path / f"{s}.ipynb") for s in students]
    graded = batch._grade_locally(todo, load_assignment(A), tmp_path / "out", workers=1,
                                  sandbox_mode="none", hide=[], gpu_capacity=gpu_capacity)
    return {g.submission.student: (g.score, g.reason) for g in graded}


def test_a_lost_worker_costs_the_submission_it_graded_and_the_one_handed_ahead_is_graded_anew(
        tmp_path, scripted, monkeypatch):
    monkeypatch.setattr(ScriptedWorker, "lose", True)
    outcome = run_locally(tmp_path, ["p1", "p2", "p3", "p4"], {})
    assert outcome == {"p1": (None, "the grading worker exited with code -9"),
                       "p2": (1.0, ""), "p3": (1.0, ""), "p4": (1.0, "")}
    [worker] = scripted
    assert worker.processes == [["p1", "p2"], ["p2", "p3", "p4"]]  # p2 was handed ahead twice
    assert worker.most_held == 2


def test_a_job_is_handed_ahead_only_with_a_gpu_slot_free_at_once(tmp_path, scripted):
    outcome = run_locally(tmp_path / "one", ["p1", "p2", "p3"], {0: 1})
    assert outcome == {s: (1.0, "") for s in ("p1", "p2", "p3")}
    assert scripted[-1].most_held == 1 and scripted[-1].gpus == [(0, 1)] * 3

    outcome = run_locally(tmp_path / "two", ["p1", "p2", "p3"], {0: 2})
    assert outcome == {s: (1.0, "") for s in ("p1", "p2", "p3")}
    assert scripted[-1].most_held == 2 and scripted[-1].gpus == [(0, 2)] * 3


@pytest.mark.slow
def test_a_batch_on_one_worker_scores_as_before_with_kernels_started_ahead(
        tmp_path, linear_partial_submission):
    folder = tmp_path / "class"
    folder.mkdir()
    for student, notebook in [("alice", SOLUTION), ("bob", linear_partial_submission),
                              ("carol", BLANK)]:
        (folder / f"{student}.ipynb").write_bytes(Path(notebook).read_bytes())
    summary = batch.grade_batch(folder, load_assignment(A), output_dir=tmp_path / "out", workers=1)
    assert summary.scores == {"alice": 10.0, "bob": 6.5, "carol": 0.0}
    assert not summary.failed
    ahead = {s: "kernel_start_ahead" in results(tmp_path / "out" / s)["timings"]
             for s in ("alice", "bob", "carol")}
    assert ahead == {"alice": False, "bob": True, "carol": True}
