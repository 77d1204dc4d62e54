"""A batch's grading worker: one long-lived process that grades submission
after submission, so that what a grading process pays once (importing the
kit, starting the warm evaluator of :mod:`autograder.engine.warm`,
collecting the suite's plan) it pays once per worker, not once per student.

The batch (:mod:`autograder.engine.batch`) talks to it through its standard
input and output, one JSON object a line:

- in: a :class:`Job`, to be graded after the jobs sent before it;
- out: ``{}`` when the oldest job's record is written, ``{"error": ...}``
  when it could not be graded: one answer per job, in order;
- out: :data:`READY` (``{"ready": true}``) when the job being graded has
  run its notebook (its kernel is gone) and is being evaluated: a job sent
  now is opened at once, its kernel started while the previous one is
  evaluated and recorded, and graded after it. The batch sends at most one
  job ahead; a job sent before the previous one's notebook has run waits
  for it, so that a worker never holds more than one kernel besides the
  running one.

Each job is graded in a thread of its own, which opens it (see
:class:`~autograder.engine.grade.Grading`) and finishes it: a kernel's
client belongs to the event loop of the thread that started it, and a
sandboxed kernel dies with that thread (bwrap's ``--die-with-parent``).
Whatever a job opened ahead is removed when its grading ends, however it
ends. Student code
never runs here: it runs in the kernel, a child of this process that dies
with it. A worker that stops answering is killed with everything it
started, and the next submission gets a new one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jupyter_core.utils import ensure_event_loop

from autograder.course import load_assignment
from autograder.engine import gpu
from autograder.engine.grade import Grading
from autograder.engine.record import grade_and_record
from autograder.engine.warm import JsonLines, die_with_parent
from autograder.errors import StopGrading

READY = {"ready": True}
"""The worker's line saying it can take the next job now (see the module)."""


@dataclass(frozen=True)
class Job:
    """One submission to grade into ``out``, and how."""

    submission: str
    student: str
    out: str
    assignment: str
    course_dir: str
    limits: dict[str, float]
    """The assignment's limits as the batch resolved them (overrides included)."""
    sandbox_mode: str
    hide: list[str] = field(default_factory=list)
    gpu_index: int | None = None
    per_gpu: int | None = None


def grading_of(job: Job, *, executed: Callable[[], None] | None = None) -> Grading:
    """``job``'s grading, not yet opened; ``executed`` is called once its notebook has run."""
    assignment = load_assignment(job.assignment, Path(job.course_dir), **job.limits)
    allotted, fraction = None, 1.0
    if job.gpu_index is not None:
        [allotted] = gpu.select_gpus(str(job.gpu_index), available=gpu.detect_gpus())
        fraction = gpu.memory_share(job.per_gpu or 1)
    return Grading(Path(job.submission), assignment, sandbox_mode=job.sandbox_mode,
                   also_hidden=[Path(p) for p in job.hide], allotted=allotted,
                   gpu_memory_fraction=fraction, executed=executed)


def grade_job(job: Job, *, opened: Grading | None = None,
              executed: Callable[[], None] | None = None) -> None:
    """Grade ``job`` and write its record (raises what grading raises):
    with its grading ``opened`` ahead (:func:`grading_of`; the caller closes
    it), or opened now with ``executed``."""
    if opened is not None:
        _record(job, opened)
        return
    with grading_of(job, executed=executed) as grading:
        _record(job, grading)


def _record(job: Job, grading: Grading) -> None:
    grade_and_record(grading.submission, grading.assignment, Path(job.out), student=job.student,
                     opened=grading)


class _Turn(threading.Thread):
    """One job in a thread of its own: opened, its kernel started, as soon
    as the job before it (``before``) has run its notebook, and graded once
    that job is answered. Says ``READY`` and its answer through ``say``."""

    def __init__(self, job: Job, before: "_Turn | None", say: Callable[[dict], None]):
        super().__init__(daemon=True)
        self.job = job
        self.before = before
        self.say = say
        self.executed = threading.Event()
        """Set once this job's notebook has run, or its grading ended: the next job may open."""

    def run(self) -> None:
        try:
            self.say(self._grade())
        finally:
            self.executed.set()
            # The loop the job's kernel clients ran on: its sockets go now, not
            # at some garbage collection, however many jobs the worker grades.
            ensure_event_loop().close()

    def _executed(self) -> None:
        self.executed.set()
        self.say(READY)

    def _grade(self) -> dict:
        ahead = None
        if self.before is not None:
            self.before.executed.wait()
            if self.before.is_alive():
                ahead = self._open_ahead()
            self.before.join()
            self.before = None  # no chain of every job the worker graded
        try:
            grade_job(self.job, opened=ahead, executed=self._executed)
            return {}
        except StopGrading as exc:
            return {"error": str(exc)}
        except Exception:  # noqa: BLE001 - the batch goes on; the reason goes to it
            return {"error": traceback.format_exc()[-2000:]}
        finally:
            if ahead is not None:
                ahead.close()

    def _open_ahead(self) -> Grading | None:
        """The job's grading, opened and its kernel started; ``None`` when
        opening failed (its turn opens it again and reports why)."""
        try:
            grading = grading_of(self.job, executed=self._executed).open()
        except Exception:  # noqa: BLE001 - reported at its turn, if it fails again
            return None
        try:
            grading.start_kernel_ahead()
        except BaseException:
            grading.close()
            raise
        return grading


def serve() -> None:
    """The worker: jobs in, answers and READY out (see the module)."""
    # A killed batch must not leave a worker grading on, writing results behind its back.
    die_with_parent()
    answers = sys.stdout
    sys.stdout = sys.stderr  # what grading prints must not mix with the answers
    lock = threading.Lock()

    def say(message: dict) -> None:
        with lock:
            answers.write(json.dumps(message) + "\n")
            answers.flush()

    turn = None
    for line in sys.stdin:
        turn = _Turn(Job(**json.loads(line)), turn, say)
        turn.start()
    if turn is not None:
        turn.join()


class WorkerLost(Exception):
    """The worker stopped answering (it was killed) or exited; the message says which."""


class Worker:
    """The batch's handle on one worker process, started on first use."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self._lines: JsonLines | None = None

    def send(self, job: Job) -> None:
        """Hand ``job`` to the worker, started if need be; :class:`WorkerLost`
        when the worker cannot take it (it exited)."""
        if self.process is None or self.process.poll() is not None:
            self.close()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "autograder.engine.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopping it stops its kernels too
            )
            self._lines = JsonLines(self.process.stdout)
        try:
            self.process.stdin.write(json.dumps(asdict(job)).encode() + b"\n")
            self.process.stdin.flush()
        except OSError as exc:
            raise WorkerLost(f"the grading worker could not take the submission ({exc}) and "
                             f"exited with code {self.close(kill=True)}") from None

    def receive(self, deadline: float, *, budget: float) -> dict:
        """The worker's next line: :data:`READY`, or the answer to its oldest
        job (``{}``, or ``{"error": ...}``). :class:`WorkerLost` when the
        worker exited, or when nothing came by ``deadline`` (``time.monotonic()``)
        and the ``budget`` seconds the job had are spent: the worker is then
        killed with all it started."""
        try:
            return self._lines.next(deadline)
        except TimeoutError:
            self.close(kill=True)
            raise WorkerLost(f"grading took longer than {budget:.0f} s and was stopped") from None
        except EOFError:
            raise WorkerLost(f"the grading worker exited with code {self.close(kill=True)}") from None

    def grade(self, job: Job, *, timeout: float) -> str:
        """Grade ``job`` alone: ``""`` when its record was written, else why not."""
        deadline = time.monotonic() + timeout
        try:
            self.send(job)
            answer = READY
            while answer == READY:
                answer = self.receive(deadline, budget=timeout)
        except WorkerLost as lost:
            return str(lost)
        return answer.get("error", "")

    def close(self, *, kill: bool = False) -> int | None:
        """Stop the worker (at once with ``kill``, else when it has finished
        its submissions) and all it started; its exit code."""
        self._lines = None
        if self.process is None:
            return None
        if self.process.poll() is None and not kill:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                kill = True
        if self.process.poll() is None or kill:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        code, self.process = self.process.returncode, None
        return code


if __name__ == "__main__":
    serve()
