"""Grade a class on a Dask cluster: one task per submission.

A :class:`Task` carries what a worker cannot have from its own checkout: the
notebook's bytes, the student's name, the assignment's name and limits, the
sandbox mode. :func:`grade_task` runs on a worker: it grades the notebook
in a private temporary folder with ``autograder grade NOTEBOOK --output-dir
TMP`` in a child process (as a local batch does, so a crash costs one task),
reads back what the child wrote as a :class:`~autograder.engine.record.Record`
and returns it. The workers need the kit with its hidden suites, the data
and bwrap, but share no file system with the client; the suites never leave
them, only records travel.

:func:`grade_on_cluster` is the client's side: it submits the tasks,
collects them with ``as_completed`` and writes each record where a local
batch would (``OUT/<student>/``, ``results.json`` last and atomically),
after checking that the worker graded with the same suite as this machine
(the record's fingerprint). A worker killed mid-task costs that task a run
on another worker (Dask reschedules it); a grading that fails is retried
once (``retries=1``), then reported with its reason while the batch goes on.

GPUs are Dask worker resources. A worker that grades on a GPU is started
with ``--resources GPU=P`` (``P`` kernels share its GPU) and
``AUTOGRADER_GPU=<index>`` (which GPU, as ``nvidia-smi`` numbers it;
default 0), one worker per GPU. When some worker offers ``GPU``, each task
asks for one (``resources={"GPU": 1}``) unless the batch says ``gpus=False``
(``--gpus none``); otherwise tasks ask for nothing and train on the CPU.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from autograder.course import Assignment, Limits, load_assignment
from autograder.engine.batch import Graded, Submission, run_grader
from autograder.engine.record import Record, fingerprint, submission_timestamp, suite_version
from autograder.errors import StopGrading

GPU = "GPU"
"""The Dask resource a GPU worker offers, one unit per kernel its GPU takes."""
WORKER_GPU_ENV = "AUTOGRADER_GPU"
"""The ``nvidia-smi`` index of the GPU a worker's tasks train on (default 0)."""
CLUSTER_RULE = ("use the address of a running Dask scheduler, e.g. tcp://scheduler:8786, "
                "or local:N for N worker processes on this machine")
DIE_WITH_WORKER = ("setpriv", "--pdeathsig", "KILL", "--")
"""Starts the grading child so that a worker killed mid-task takes it along
(util-linux's ``setpriv``); the sandbox's bwrap dies with the child in turn."""
WORKERS_TIMEOUT = 120
"""Seconds to wait for the first worker to join a remote scheduler."""


class ClusterError(StopGrading):
    """The cluster cannot be reached or used."""


class GradingFailed(Exception):
    """A worker could not grade a submission; the message says why."""


@dataclass(frozen=True)
class Task:
    """One submission to grade, with everything a worker needs besides its own kit."""

    student: str
    filename: str
    notebook: bytes
    assignment: str
    limits: Limits
    sandbox_mode: str
    gpu: bool
    """Whether the task holds a ``GPU`` resource unit."""


def grade_task(task: Task) -> Record:
    """Grade ``task`` on this Dask worker and return its record.

    The child process grades in a temporary folder inside the worker's own
    directory (Dask clears it after a worker dies), which is removed when
    the record has been read. Raises :class:`GradingFailed` when the child
    wrote no results, so Dask retries the task.
    """
    import dask
    from distributed import get_worker

    worker = get_worker()
    # Dask's nanny caps its workers' threads (OMP_NUM_THREADS=1, ...) for the
    # worker's own sake; the kernel trains with every core, as in a local batch.
    caps = {k: str(v) for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()}
    env = {k: v for k, v in os.environ.items() if caps.get(k) != v}
    assignment = replace(load_assignment(task.assignment), limits=task.limits)
    gpu_index, per_gpu = None, None
    if task.gpu:
        gpu_index = int(os.environ.get(WORKER_GPU_ENV, "0"))
        per_gpu = int(worker.state.total_resources[GPU])
    with tempfile.TemporaryDirectory(prefix="autograder-task-", dir=worker.local_directory) as tmp:
        notebook = Path(tmp) / "submission" / task.filename
        notebook.parent.mkdir()
        notebook.write_bytes(task.notebook)
        out = Path(tmp) / "out"
        reason = run_grader(Submission(task.student, notebook), assignment, out,
                            sandbox_mode=task.sandbox_mode, hide=[Path(worker.local_directory)],
                            gpu_index=gpu_index, per_gpu=per_gpu, prefix=DIE_WITH_WORKER, env=env)
        if reason:
            raise GradingFailed(f"on worker {worker.address}: {reason}")
        return Record.read(out)


def worker_preflight(assignment: str, limits: Limits, sandbox_mode: str) -> dict:
    """Runs on a Dask worker: what stops it grading ``assignment``
    (:func:`autograder.doctor.preflight`: the suite, the data, the sandbox),
    and the suite version it would grade with."""
    from autograder.doctor import format_finding, preflight

    problems = [format_finding(f) for f in preflight(assignment, sandbox_mode)]
    version = None if problems else suite_version(replace(load_assignment(assignment), limits=limits))
    return {"problems": problems, "suite_version": version}


def check_workers(client, assignment: Assignment, sandbox_mode: str) -> None:
    """Every worker connected now can grade ``assignment`` with the same kit
    and suite as this machine, or a :class:`ClusterError` naming each that
    cannot, and why, before anything is graded. (A worker that joins later
    is checked by the fingerprint of each record it returns.)"""
    answers = client.run(worker_preflight, assignment.name, assignment.limits, sandbox_mode)
    here = suite_version(assignment)
    faults = []
    for worker, answer in sorted(answers.items()):
        if answer["problems"]:
            faults.append(f"{worker}:\n  " + "\n  ".join(answer["problems"]))
        elif answer["suite_version"] != here:
            faults.append(f"{worker}: has another kit or hidden suite (suite version "
                          f"{answer['suite_version']}, here {here}); install the same kit everywhere")
    if faults:
        raise ClusterError(f"{len(faults)} Dask worker(s) cannot grade {assignment.name!r}; nothing "
                           "was graded:\n" + "\n".join(faults))


def check_address(address: str) -> int | None:
    """N for ``local:N``, ``None`` for a scheduler's address; anything else is refused."""
    local = re.fullmatch(r"local:([1-9][0-9]*)", address)
    if not local and not re.fullmatch(r"[a-z]+://\S+", address):
        raise ClusterError(f"--cluster {address!r} is not valid: {CLUSTER_RULE}.")
    return int(local.group(1)) if local else None


@contextmanager
def connect(address: str) -> Iterator:
    """A Dask client of the scheduler at ``address``, or of a
    ``LocalCluster`` of N single-threaded worker processes for ``local:N``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ClusterError("--cluster needs Dask's distributed: "
                           "pip install 'keras-autograder[cluster]'.") from exc
    local_workers = check_address(address)
    if local_workers:
        with LocalCluster(n_workers=local_workers, threads_per_worker=1,
                          processes=True) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=30)
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot use the Dask scheduler at {address}: {exc}. Start the "
                           "scheduler and at least one worker, or use --cluster local:N.") from exc
    with client:
        yield client


def _dashboard(client) -> str:
    if "dashboard" not in client.scheduler_info().get("services", {}):
        return "none (install bokeh beside the scheduler to have one)"
    return client.dashboard_link


def _offers_gpu(client) -> bool:
    return any(w.get("resources", {}).get(GPU) for w in client.scheduler_info()["workers"].values())


def _collect(future, submission: Submission, assignment: Assignment,
             output_dir: Path) -> tuple[float | None, str]:
    """Write a finished task's record as a local batch would: the score, or
    ``None`` and why not."""
    try:
        record = future.result()
    except Exception as exc:  # the task's GradingFailed after its retry, or Dask's KilledWorker
        return None, str(exc) if isinstance(exc, GradingFailed) else f"{type(exc).__name__}: {exc}"
    here = fingerprint(submission.path, assignment)
    there = record.results.get("fingerprint")
    if there != here:
        return None, (f"the worker graded with another kit or hidden suite (fingerprint {there}, "
                      f"here {here}): install the same kit on every worker and on this machine")
    record.results["submission"] = str(submission.path)
    record.results["submitted_at"] = submission_timestamp(submission.path)
    record.write(output_dir / submission.student)
    return float(record.results["score"]), ""


def grade_on_cluster(todo: list[Submission], assignment: Assignment, output_dir: Path, *,
                     address: str, sandbox_mode: str, gpus: bool,
                     say: Callable[[str], None]) -> Iterator[Graded]:
    """Grade ``todo`` on the Dask cluster at ``address``, writing each record
    into ``output_dir/<student>/`` as it arrives."""
    with connect(address) as client:
        from distributed import as_completed

        say(f"Dask dashboard: {_dashboard(client)}")
        check_workers(client, assignment, sandbox_mode)
        wants_gpu = gpus and _offers_gpu(client)
        futures = {}
        for submission in todo:
            task = Task(submission.student, submission.path.name, submission.path.read_bytes(),
                        assignment.name, assignment.limits, sandbox_mode, wants_gpu)
            key = f"grade-{submission.student}-{uuid.uuid4().hex[:8]}"
            future = client.submit(grade_task, task, key=key, retries=1,
                                   resources={GPU: 1} if wants_gpu else None)
            futures[future] = (submission, time.perf_counter())
        for future in as_completed(list(futures)):
            submission, started = futures.pop(future)
            score, reason = _collect(future, submission, assignment, output_dir)
            yield Graded(submission, score, reason, time.perf_counter() - started)
