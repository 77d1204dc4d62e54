"""A batch's grading worker: one long-lived process that grades submission
after submission, so that what a grading process pays once (importing the
kit, starting the warm evaluator of :mod:`autograder.engine.warm`,
collecting the suite's plan) it pays once per worker, not once per student.

The batch (:mod:`autograder.engine.batch`) talks to it through its standard
input and output: one :class:`Job` as a JSON line in, one JSON line out when
that submission's record is written (``{"error": ...}`` when it could not be
graded). Student code never runs here: it runs in the kernel, a child of
this process that dies with it. A worker that stops answering is killed
with everything it started, and the next submission gets a new one.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.course import load_assignment
from autograder.engine import gpu
from autograder.engine.record import grade_and_record
from autograder.errors import StopGrading


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


def grade_job(job: Job) -> None:
    """Grade ``job`` and write its record (raises what grading raises)."""
    assignment = load_assignment(job.assignment, Path(job.course_dir), **job.limits)
    allotted, fraction = None, 1.0
    if job.gpu_index is not None:
        [allotted] = gpu.select_gpus(str(job.gpu_index), available=gpu.detect_gpus())
        fraction = gpu.memory_share(job.per_gpu or 1)
    grade_and_record(Path(job.submission), assignment, Path(job.out), student=job.student,
                     sandbox_mode=job.sandbox_mode, also_hidden=[Path(p) for p in job.hide],
                     allotted=allotted, gpu_memory_fraction=fraction)


def serve() -> None:
    """The worker: one job per input line, one answer per job."""
    answers = sys.stdout
    sys.stdout = sys.stderr  # what grading prints must not mix with the answers
    for line in sys.stdin:
        try:
            grade_job(Job(**json.loads(line)))
            answer = {}
        except StopGrading as exc:
            answer = {"error": str(exc)}
        except Exception:  # noqa: BLE001 - the batch goes on; the reason goes to it
            answer = {"error": traceback.format_exc()[-2000:]}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


class Worker:
    """The batch's handle on one worker process, started on first use."""

    def __init__(self):
        self.process: subprocess.Popen | None = None

    def grade(self, job: Job, *, timeout: float) -> str:
        """Grade ``job``; ``""`` when its record was written, else why not."""
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "autograder.engine.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                start_new_session=True,  # its own process group: stopping it stops its kernel too
            )
        try:
            self.process.stdin.write(json.dumps(asdict(job)) + "\n")
            self.process.stdin.flush()
        except OSError as exc:
            self.close()
            return f"the grading worker could not take the submission: {exc}"
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            self.close(kill=True)
            return f"grading took longer than {timeout:.0f} s and was stopped"
        answer = self.process.stdout.readline()
        if not answer:
            return f"the grading worker exited with code {self.close(kill=True)}"
        return json.loads(answer).get("error", "")

    def close(self, *, kill: bool = False) -> int | None:
        """Stop the worker (at once with ``kill``, else when it has finished
        its submission) and all it started; its exit code."""
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
