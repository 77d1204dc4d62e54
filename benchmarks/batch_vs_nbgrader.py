"""Grade one class of submissions with ``nbgrader autograde`` and with
``autograder grade``, on the same machine in one run, and compare.

Usage: ``python benchmarks/batch_vs_nbgrader.py [N] [ASSIGNMENT] [--only-kit]``
(default 20 submissions of linear_grading; ``--only-kit`` times the kit with
one worker alone, no nbgrader, to compare two versions of the kit). The
submissions are the release with a different, seeded mix of the reference
answers filled in, so scores vary from 0 to full marks. Prints each tool's
wall time, the ratio, and the per-submission overhead beyond the notebook's
own execution (the mean ``execute`` stage the kit measures for the same
notebooks).

nbgrader runs serially and unsandboxed; the kit is timed serially
(``--workers 1``) for a like-for-like ratio and with one worker per core.
The kit's mean stages per submission follow, ``kernel_start_ahead`` being
the part of the kernel's start that overlapped the previous submission.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from autograder.course import load_assignment

VENV_BIN = str(Path(sys.executable).parent)


def reference_answers(source: Path) -> dict[str, str]:
    """grade_id -> the reference code of each answer cell, markers removed."""
    answers = {}
    for cell in nbformat.read(source, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = [l for l in cell.source.splitlines() if "### BEGIN SOLUTION" not in l
                     and "### END SOLUTION" not in l]
            answers[meta["grade_id"]] = "\n".join(lines)
    return answers


def make_class(course: Path, assignment, n: int) -> None:
    """``n`` submissions in nbgrader's submitted/ layout, each a seeded mix."""
    answers = reference_answers(assignment.source_notebook)
    order = list(answers)
    rng = random.Random(2026)
    for i in range(n):
        # Answers build on each other, so a student finishes a prefix of them.
        done = set(order[: rng.randint(0, len(order))])
        notebook = nbformat.read(assignment.release_notebook, as_version=4)
        for cell in notebook.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in done:
                cell.source = answers[gid]
        path = course / "submitted" / f"student{i:02d}" / assignment.name / assignment.release_notebook.name
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, path)


def timed(command: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return elapsed


def main(n: int = 20, name: str = "linear_grading", *, only_kit: bool = False) -> None:
    assignment = load_assignment(name)
    course = Path(tempfile.mkdtemp(prefix="autograder-bench-"))
    try:
        shutil.copy(assignment.course_dir / "nbgrader_config.py", course)
        shutil.copytree(assignment.source_notebook.parent, course / "solutions" / name)
        db = ["--db", f"sqlite:///{course / 'gradebook.db'}"]
        nbgrader = [sys.executable, "-m", "nbgrader"]
        make_class(course, assignment, n)
        print(f"{n} submissions of {name}, {os.cpu_count()} cores")

        walls = {}
        if not only_kit:
            timed([*nbgrader, "generate_assignment", name, "--force", *db], course)
            walls["nbgrader autograde"] = timed([*nbgrader, "autograde", name, "--create", "--force", *db],
                                                course)
        kit = [sys.executable, "-m", "autograder.cli", "grade", str(course / "submitted"),
               "--assignment", name]
        serial_out, parallel_out = course / "kit-serial", course / "kit-parallel"
        walls["autograder grade --workers 1"] = timed(
            [*kit, "--output-dir", str(serial_out), "--workers", "1"], course)
        if not only_kit:
            walls[f"autograder grade --workers {os.cpu_count()}"] = timed(
                [*kit, "--output-dir", str(parallel_out)], course)

        results = [json.loads(p.read_text()) for p in serial_out.glob("*/results.json")]
        execute = statistics.mean(r["timings"].get("execute", 0.0) for r in results)
        scores = sorted(r["score"] for r in results)
        print(f"scores: min {scores[0]:g}, median {statistics.median(scores):g}, max {scores[-1]:g}"
              f" of {results[0]['max_score']:g}")
        stages = sorted({stage for r in results for stage in r["timings"]})
        print("kit's mean stages (1 worker), s per submission: " + ", ".join(
            f"{stage} {statistics.mean(r['timings'].get(stage, 0.0) for r in results):.2f}"
            for stage in stages))
        print(f"notebook's own execution (kit's execute stage): {execute:.2f} s per submission\n")
        print(f"{'grader':<34} {'wall s':>8} {'s/sub':>7} {'overhead s/sub':>15}")
        for label, wall in walls.items():
            print(f"{label:<34} {wall:8.1f} {wall / n:7.2f} {wall / n - execute:15.2f}")
        if not only_kit:
            nb_wall = walls["nbgrader autograde"]
            print(f"\nratio autograder (1 worker) / nbgrader: "
                  f"{walls['autograder grade --workers 1'] / nb_wall:.2f}")
            print(f"ratio autograder ({os.cpu_count()} workers) / nbgrader: "
                  f"{walls[f'autograder grade --workers {os.cpu_count()}'] / nb_wall:.2f}")
    finally:
        shutil.rmtree(course, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=20, help="submissions (default 20)")
    parser.add_argument("assignment", nargs="?", default="linear_grading")
    parser.add_argument("--only-kit", action="store_true",
                        help="time the kit with one worker alone (no nbgrader, no parallel run)")
    args = parser.parse_args()
    main(args.n, args.assignment, only_kit=args.only_kit)
