"""Grade a whole class: find the submissions, grade each in its own process,
skip what is already graded, and sum up.

Each submission is graded by ``autograder grade NOTEBOOK --output-dir
OUT/<student>`` in a child process, so a submission that crashes the grader,
or a grader killed half-way, costs only that submission. The child writes
``results.json`` last and atomically, with a fingerprint of the submission
and of the hidden suite; a rerun skips every student whose fingerprint still
matches, so killing a batch (even with SIGKILL) loses nothing already graded.

The child processes run here, ``workers`` at a time, or on a Dask cluster
(``cluster``, :mod:`autograder.engine.cluster`), whose workers return each
record for this process to write in the same place. ``shard`` grades one of
N deterministic parts of a class, and :func:`merge_batches` puts the parts'
output folders back together.
"""

from __future__ import annotations

import json
import os
import queue
import re
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import Assignment
from autograder.engine.gpu import GpuSlots, Slot
from autograder.engine.grade import can_hide
from autograder.engine.record import Record, fingerprint, write_json
from autograder.engine.worker import READY, Job, Worker, WorkerLost
from autograder.errors import StopGrading
from autograder.results import RESULTS_FILE


class NoSubmissionsError(StopGrading):
    """The folder given to a batch holds nothing to grade."""


class ShardError(StopGrading):
    """A ``--shard`` that does not name one of N parts."""


class MergeError(StopGrading):
    """Output folders that cannot be merged into one class."""


SHARD_RULE = "write K/N with whole numbers 1 <= K <= N, e.g. --shard 1/4 for the first of four shards"
SUMMARY_FILE = "batch_summary.json"


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (from 1) of ``count`` parts of a class: the students,
    sorted by name, dealt round-robin, so every student lands in exactly one
    part and the parts differ in size by one at most."""

    index: int
    count: int

    def students(self, names: Iterable[str]) -> set[str]:
        return set(sorted(set(names))[self.index - 1::self.count])


def parse_shard(text: str) -> Shard:
    """``K/N`` as :class:`Shard`; anything else is refused with the rule."""
    match = re.fullmatch(r"([1-9][0-9]*)/([1-9][0-9]*)", text)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ShardError(f"--shard {text!r} is not valid: {SHARD_RULE}.")
    return Shard(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path


@dataclass
class Problem:
    """A submission the batch could not grade, and why."""

    student: str
    path: Path
    reason: str


@dataclass
class Graded:
    """One submission the batch ran: its score, or ``None`` and why it failed."""

    submission: Submission
    score: float | None
    reason: str
    seconds: float


@dataclass
class BatchSummary:
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Already graded with the same submission and suite: not run again."""
    failed: list[Problem] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    """Every student's score in the output folder, this run's and earlier ones."""
    max_score: float = 0.0

    def to_dict(self) -> dict:
        values = list(self.scores.values())
        return {
            "graded": self.graded,
            "skipped": self.skipped,
            "failed": [{"student": p.student, "submission": str(p.path), "reason": p.reason}
                       for p in self.failed],
            "max_score": self.max_score,
            "mean_score": round(statistics.mean(values), 4) if values else None,
            "median_score": round(statistics.median(values), 4) if values else None,
        }

    def text(self) -> str:
        data = self.to_dict()
        lines = [f"graded {len(self.graded)}, skipped {len(self.skipped)} (already graded), "
                 f"failed to grade {len(self.failed)}"]
        for problem in self.failed:
            lines.append(f"  {problem.student}: {problem.reason}")
        if self.scores:
            lines.append(f"{len(self.scores)} results: mean {data['mean_score']:g}, median "
                         f"{data['median_score']:g} of {self.max_score:g}")
        return "\n".join(lines)


def discover(directory: Path, assignment: str) -> tuple[list[Submission], list[Problem]]:
    """The submissions in ``directory`` and the students whose submission is unclear.

    Two layouts are understood: nbgrader's ``submitted/<student>/<assignment>/``
    (``directory`` may be the course directory, its ``submitted/`` folder, or
    any folder laid out the same way), and a flat folder of notebooks, one per
    student, the file name (without ``.ipynb``) naming the student.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NoSubmissionsError(
            f"{directory} is not a folder of submissions. Give a folder laid out as "
            f"<student>/{assignment}/*.ipynb (nbgrader's submitted/) or holding one .ipynb per student."
        )
    if (directory / "submitted").is_dir():
        directory = directory / "submitted"
    found, problems = [], []
    for student_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        folder = student_dir / assignment
        if not folder.is_dir():
            continue
        notebooks = sorted(folder.glob("*.ipynb"))
        named = folder / f"{assignment}.ipynb"
        if named in notebooks:
            found.append(Submission(student_dir.name, named))
        elif len(notebooks) == 1:
            found.append(Submission(student_dir.name, notebooks[0]))
        else:
            what = "no notebook" if not notebooks else f"{len(notebooks)} notebooks and none named {named.name}"
            problems.append(Problem(student_dir.name, folder, f"{folder} has {what}; "
                                    f"the student should submit {named.name}."))
    for notebook in sorted(directory.glob("*.ipynb")):
        found.append(Submission(notebook.stem, notebook))
    if not found and not problems:
        raise NoSubmissionsError(
            f"{directory} holds no submissions of {assignment!r}: neither "
            f"<student>/{assignment}/*.ipynb folders (nbgrader's submitted/ layout) nor .ipynb "
            "files. Check the folder and the assignment name."
        )
    return found, problems


def _already_graded(results_file: Path, expected: dict) -> float | None:
    """The recorded score when ``results_file`` matches ``expected``."""
    try:
        data = json.loads(results_file.read_text())
        return float(data["score"]) if data.get("fingerprint") == expected else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


OVERRIDABLE_LIMITS = ("cell_timeout", "notebook_timeout", "evaluation_timeout", "memory_gib",
                      "max_processes", "max_output_mib")
"""The limits ``autograder grade`` takes as options (``--cell-timeout`` ...):
a batch hands each grading the values it resolved."""


def limit_overrides(limits) -> dict[str, float]:
    return {name: getattr(limits, name) for name in OVERRIDABLE_LIMITS}


def grading_budget(limits) -> float:
    """Seconds one grading may take in all before it is stopped: the kernel's
    start, the notebook and the evaluation, and two minutes for the rest."""
    return limits.startup_timeout + limits.notebook_timeout + limits.evaluation_timeout + 120


def _child_command(submission: Submission, assignment: Assignment, out: Path, *,
                   sandbox_mode: str, hide: list[Path], gpu_index: int | None,
                   per_gpu: int | None) -> list[str]:
    command = [
        sys.executable, "-m", "autograder.cli", "grade", str(submission.path),
        "--assignment", assignment.name, "--course-dir", str(assignment.course_dir),
        "--output-dir", str(out), "--student", submission.student, "--sandbox", sandbox_mode,
        "--gpus", "none" if gpu_index is None else str(gpu_index),
    ]
    for name, value in limit_overrides(assignment.limits).items():
        command += ["--" + name.replace("_", "-"), str(value)]
    if per_gpu:
        command += ["--per-gpu", str(per_gpu)]
    for path in hide:
        command += ["--hide", str(path)]
    return command


def run_grader(submission: Submission, assignment: Assignment, out: Path, *, sandbox_mode: str,
               hide: list[Path], gpu_index: int | None = None, per_gpu: int | None = None,
               prefix: Sequence[str] = (), env: dict[str, str] | None = None) -> str:
    """Grade ``submission`` into ``out`` with ``autograder grade NOTEBOOK`` in a
    child process (started through ``prefix``, if any, with ``env``, default
    this process's environment); ``""`` when it wrote ``results.json``, else
    why not."""
    budget = grading_budget(assignment.limits)
    command = _child_command(submission, assignment, out, sandbox_mode=sandbox_mode, hide=hide,
                             gpu_index=gpu_index, per_gpu=per_gpu)
    try:
        completed = subprocess.run([*prefix, *command], capture_output=True, text=True,
                                   timeout=budget, env=env)
    except subprocess.TimeoutExpired:
        return f"grading took longer than {budget} s and was stopped"
    if completed.returncode != 0 or not (out / RESULTS_FILE).is_file():
        tail = (completed.stderr.strip() or completed.stdout.strip())[-800:]
        return f"the grader exited with code {completed.returncode}: {tail}"
    return ""


@dataclass
class _Handed:
    """A submission handed to a grading worker, with the GPU slot its kernel holds."""

    submission: Submission
    slot: Slot
    since: float = field(default_factory=time.perf_counter)


def _outcome(out: Path, reason: str) -> tuple[float | None, str]:
    """The score a grading wrote into ``out``, or ``None`` and why there is none."""
    if not reason and not (out / RESULTS_FILE).is_file():
        reason = "the grading worker wrote no results.json"
    if reason:
        return None, reason
    return float(json.loads((out / RESULTS_FILE).read_text())["score"]), ""


def _grade_locally(todo: list[Submission], assignment: Assignment, output_dir: Path, *,
                   workers: int | None, sandbox_mode: str, hide: list[Path],
                   gpu_capacity: dict[int, int]) -> Iterator[Graded]:
    """Grade ``todo`` here, on ``workers`` grading workers
    (:mod:`autograder.engine.worker`), each kept busy by a thread of its own.

    A worker grades one submission at a time, holding a GPU slot when there
    are GPUs. When its submission has run its notebook, it says so, and its
    thread hands it the next submission (if a GPU slot is free at once: a
    thread never waits for a second slot), whose kernel then starts while
    the previous submission is evaluated. Each submission has
    :func:`grading_budget` from its turn on; a worker past it, or one that
    exits, costs the submission being graded, and the one handed ahead,
    which ran nothing yet, is graded again by a new worker.
    """
    slots = GpuSlots(gpu_capacity)
    waiting = deque(todo)
    finished: queue.SimpleQueue[Graded | None] = queue.SimpleQueue()
    budget = grading_budget(assignment.limits)

    def take(*, wait: bool) -> _Handed | None:
        """The next submission and a slot; ``None`` when none is left or,
        without ``wait``, no slot is free now."""
        if wait:
            try:
                submission = waiting.popleft()
            except IndexError:
                return None
            return _Handed(submission, slots.acquire())
        slot = slots.acquire(wait=False)
        if slot is None:
            return None
        try:
            return _Handed(waiting.popleft(), slot)
        except IndexError:
            slots.release(slot)
            return None

    def job(handed: _Handed) -> Job:
        gpu_index = handed.slot.gpu_index
        return Job(submission=str(handed.submission.path), student=handed.submission.student,
                   out=str(output_dir / handed.submission.student), assignment=assignment.name,
                   course_dir=str(assignment.course_dir), limits=limit_overrides(assignment.limits),
                   sandbox_mode=sandbox_mode, hide=[str(p) for p in hide], gpu_index=gpu_index,
                   per_gpu=slots.capacity.get(gpu_index) if gpu_index is not None else None)

    def done(handed: _Handed, reason: str) -> None:
        slots.release(handed.slot)
        score, reason = _outcome(output_dir / handed.submission.student, reason)
        finished.put(Graded(handed.submission, score, reason, time.perf_counter() - handed.since))

    def keep_busy() -> None:
        worker = Worker()
        held: deque[_Handed] = deque()  # handed to the worker, the one being graded first
        again = None  # handed ahead to a worker that was lost: for a new worker
        deadline = 0.0
        try:
            while True:
                try:
                    if not held:
                        handed, again = again or take(wait=True), None
                        if handed is None:
                            return
                        held.append(handed)
                        worker.send(job(handed))
                        deadline = time.monotonic() + budget
                    message = worker.receive(deadline, budget=budget)
                    if message != READY:
                        done(held.popleft(), message.get("error", ""))
                        deadline = time.monotonic() + budget
                    elif len(held) == 1 and (ahead := take(wait=False)) is not None:
                        held.append(ahead)
                        worker.send(job(ahead))
                except WorkerLost as lost:
                    done(held.popleft(), str(lost))
                    again = held.popleft() if held else None
        finally:
            for handed in [*held, *filter(None, [again])]:
                slots.release(handed.slot)
            worker.close()
            finished.put(None)

    threads = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(keep_busy) for _ in range(threads)]
        running = threads
        while running:
            graded = finished.get()
            if graded is None:
                running -= 1
            else:
                yield graded
        for future in futures:
            future.result()  # a thread's failure is the batch's


def _progress_line(done: int, total: int, text: str, width: int = 24) -> str:
    filled = round(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {text}"


def grade_batch(directory: Path, assignment: Assignment, *, output_dir: Path,
                workers: int | None = None, force: bool = False, sandbox_mode: str = "auto",
                gpu_capacity: dict[int, int] | None = None, cluster: str | None = None,
                cluster_gpus: bool = True, shard: Shard | None = None,
                progress: Callable[[str], None] | None = None) -> BatchSummary:
    """Grade every submission of ``assignment`` in ``directory`` into ``output_dir``.

    ``output_dir/<student>/`` receives ``results.json``, ``feedback/`` and
    ``report.html``. ``workers`` submissions are graded at once (default: the
    number of cores). Students already graded with the same submission and
    suite are skipped unless ``force``. ``gpu_capacity`` maps each GPU's
    index to the kernels it takes at once (:mod:`autograder.engine.gpu`); a
    worker waits for a free GPU slot when all are taken. With ``cluster``
    (``tcp://HOST:PORT`` or ``local:N``) the Dask cluster grades instead,
    each task asking for a GPU where the workers offer one and
    ``cluster_gpus`` (:mod:`autograder.engine.cluster`). ``shard`` grades
    only its part of the class. ``progress`` receives one line per finished
    submission.
    """
    output_dir = Path(output_dir)
    submissions, problems = discover(directory, assignment.name)
    if shard:
        mine = shard.students([s.student for s in submissions] + [p.student for p in problems])
        submissions = [s for s in submissions if s.student in mine]
        problems = [p for p in problems if p.student in mine]
    summary = BatchSummary(failed=list(problems))
    output_dir.mkdir(parents=True, exist_ok=True)

    todo = []
    for submission in submissions:
        expected = fingerprint(submission.path, assignment)
        score = None if force else _already_graded(output_dir / submission.student / RESULTS_FILE,
                                                   expected)
        if score is None:
            todo.append(submission)
        else:
            summary.skipped.append(submission.student)
    say = progress or (lambda line: None)
    if summary.skipped:
        say(f"skipping {len(summary.skipped)} already graded (use --force to regrade)")
    if cluster:
        from autograder.engine.cluster import grade_on_cluster

        runs = grade_on_cluster(todo, assignment, output_dir, address=cluster,
                                sandbox_mode=sandbox_mode, gpus=cluster_gpus, say=say)
    else:
        # A kernel must see neither classmates' notebooks nor anyone's results.
        hide = [output_dir]
        hide += [Path(directory)] if can_hide(directory) else [s.path for s in submissions]
        runs = _grade_locally(todo, assignment, output_dir, workers=workers,
                              sandbox_mode=sandbox_mode, hide=hide, gpu_capacity=gpu_capacity or {})
    for done, graded in enumerate(runs, start=1):
        student = graded.submission.student
        if graded.score is None:
            summary.failed.append(Problem(student, graded.submission.path, graded.reason))
            text = f"{student}: failed to grade"
        else:
            summary.graded.append(student)
            text = f"{student}: {graded.score:g}"
        say(_progress_line(done, len(todo), f"{text} ({graded.seconds:.0f} s)"))
    _collect_scores(summary, output_dir, assignment.name)
    return summary


def write_summary(output_dir: Path, summary: BatchSummary, assignment: str) -> None:
    """Write ``batch_summary.json`` and the class summary of ``assignment``'s
    results into ``output_dir``."""
    from autograder.feedback.summary import write_class_summary
    from autograder.records import load_results

    write_json(summary.to_dict(), Path(output_dir) / SUMMARY_FILE)
    write_class_summary(output_dir, [r for r in load_results(output_dir) if r.assignment == assignment])


def _collect_scores(summary: BatchSummary, output_dir: Path, assignment: str) -> None:
    """Every score of ``assignment`` in ``output_dir``, this run's and earlier ones."""
    for results_file in sorted(output_dir.glob(f"*/{RESULTS_FILE}")):
        try:
            data = json.loads(results_file.read_text())
        except (OSError, ValueError):
            continue
        if data.get("assignment") == assignment:
            summary.scores[results_file.parent.name] = float(data["score"])
            summary.max_score = max(summary.max_score, float(data["max_score"]))


def merge_batches(sources: Sequence[Path], output_dir: Path, assignment: str) -> BatchSummary:
    """Put the output folders of a sharded class (``sources``) together in
    ``output_dir``: every ``<student>/`` folder is copied (``results.json``
    last) and the shards' summaries are joined. A student found in two
    sources with different fingerprints is refused: the two gradings
    disagree on what was graded, and neither is chosen silently."""
    output_dir = Path(output_dir)
    sources = [Path(s) for s in sources]
    if output_dir.resolve() in {s.resolve() for s in sources}:
        raise MergeError(f"--output-dir {output_dir} is also a --from folder; merge into a new folder.")
    owners: dict[str, tuple[Path, dict | None]] = {}
    merged = BatchSummary()
    for source in sources:
        try:
            shard = json.loads((source / SUMMARY_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise MergeError(f"--from {source} is not the output folder of a batch: its {SUMMARY_FILE} "
                             f"cannot be read ({exc}). Give the --output-dir of `autograder grade "
                             "FOLDER --shard K/N`.") from exc
        merged.graded += shard["graded"]
        merged.skipped += shard["skipped"]
        merged.failed += [Problem(p["student"], Path(p["submission"]), p["reason"]) for p in shard["failed"]]
        for results_file in sorted(source.glob(f"*/{RESULTS_FILE}")):
            student, seen = results_file.parent.name, json.loads(results_file.read_text()).get("fingerprint")
            first = owners.setdefault(student, (source, seen))
            if first[1] != seen:
                raise MergeError(
                    f"{student} was graded in both {first[0]} and {source}, with different "
                    f"fingerprints ({first[1]} and {seen}): a student belongs to one shard. Grade "
                    "the class again with the same --shard N in every job, or remove the stale folder."
                )
    for student, (source, _) in owners.items():
        Record.read(source / student).write(output_dir / student)
    _collect_scores(merged, output_dir, assignment)
    return merged
