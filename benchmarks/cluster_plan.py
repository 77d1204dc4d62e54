"""How long a class takes to grade on W workers (and G GPUs), from the
measured grading time of one submission per assignment.

    python benchmarks/cluster_plan.py --workers 2 8 32
    python benchmarks/cluster_plan.py --seconds mnist_cnn=40 --gpu-seconds mnist_cnn=8 --gpus 4
    python benchmarks/cluster_plan.py --measure      # a LocalCluster of 2 grades linear_grading

A worker grades one submission at a time (``dask worker --nthreads 1``, or
``--cluster local:N``), so a class of n takes ceil(n / W) rounds of the
per-submission time, when each worker has the cores one grading keeps busy;
workers that share fewer cores are slower by the ratio (``--measure`` measures
that share and predicts with it). On GPUs, P kernels share a card: ceil(n /
(G * P)) rounds of the time P take together. The CPU times are
docs/thresholds.md's "whole grading" on the 2-core development machine (one
submission alone on the machine); the GPU time is mnist_cnn's on an H200
(README, "GPU graders", 2026-11-30).
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

CPU_SECONDS = {
    "linear_grading": 23.3,
    "boston_housing": 17.2,
    "mnist_mlp": 31.8,
    "mnist_cnn": 62.8,
    "cifar10_cnn": 122.5,
}
"""Whole grading of the reference, seconds, CPU, 2 cores (docs/thresholds.md, "Time to target")."""
GPU_SECONDS: dict[str, tuple[int, float]] = {"mnist_cnn": (8, 89.4)}
"""Assignment -> (P, seconds in which one GPU grades P submissions at once),
measured by benchmarks/gpu_pack.py."""
CLASS_SIZES = (100, 500, 2000)


def predicted(students: int, seconds: float, workers: int, *, slowdown: float = 1.0) -> float:
    """Seconds for ``students`` on ``workers``, each grading taking
    ``seconds`` alone and ``slowdown`` times as long beside the others."""
    return math.ceil(students / workers) * seconds * slowdown


def contention(workers: int, cores_per_grading: float, cores: int) -> float:
    """How much slower each of ``workers`` gradings at once runs when each
    keeps ``cores_per_grading`` cores busy alone and the machine has ``cores``."""
    return max(1.0, workers * cores_per_grading / cores)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def table(cpu: dict[str, float], gpu: dict[str, float], workers: list[int], gpus: list[int]) -> str:
    columns = [f"{w} workers" for w in workers] + [f"{g} GPUs" for g in gpus]
    lines = ["| assignment | s per submission | students | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for name, seconds in cpu.items():
        for n in CLASS_SIZES:
            cells = [_duration(predicted(n, seconds, w)) for w in workers]
            cells += [_duration(predicted(n, gpu[name][1], g * gpu[name][0])) if name in gpu
                      else "not measured" for g in gpus]
            lines.append(f"| {name} | {seconds:g} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _gpu_pairs(values: list[str]) -> dict[str, tuple[int, float]]:
    """``--gpu-seconds A=S``: one kernel per GPU taking S seconds."""
    return {name: (1, seconds) for name, seconds in _pairs(values, "--gpu-seconds").items()}


def _pairs(values: list[str], option: str) -> dict[str, float]:
    pairs = {}
    for value in values:
        name, _, seconds = value.partition("=")
        try:
            pairs[name] = float(seconds)
        except ValueError:
            raise SystemExit(f"{option} {value!r}: write ASSIGNMENT=SECONDS, e.g. mnist_cnn=40") from None
    return pairs


def measure(students: int, workers: int) -> None:
    """Grade one linear_grading reference alone (its wall time and the cores
    it keeps busy), then ``students`` copies on a LocalCluster of ``workers``
    processes, and compare the second with its prediction from the first."""
    import os
    import subprocess
    import sys

    import psutil

    from distributed import LocalCluster

    from autograder.course import load_assignment
    from autograder.engine import batch

    assignment = load_assignment("linear_grading")
    with tempfile.TemporaryDirectory() as tmp:
        # The machine's busy time while the one grading runs (kernel, sandbox,
        # evaluator: processes no parent here waits for), so run it on a quiet machine.
        before = psutil.cpu_times()
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "autograder.cli", "grade", str(assignment.source_notebook),
                        "--assignment", assignment.name], check=True, capture_output=True)
        alone = time.perf_counter() - started
        after = psutil.cpu_times()
        cpu = sum(after) - sum(before) - (after.idle - before.idle) - (
            getattr(after, "iowait", 0) - getattr(before, "iowait", 0))
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster:
            folder = Path(tmp) / "class"
            folder.mkdir()
            for i in range(students):
                shutil.copy(assignment.source_notebook, folder / f"student{i:03d}.ipynb")
            started = time.perf_counter()
            summary = batch.grade_batch(folder, assignment, output_dir=Path(tmp) / "out",
                                        cluster=cluster.scheduler_address, progress=print)
            measured = time.perf_counter() - started
    cores = os.cpu_count() or 1
    slowdown = contention(min(workers, students), cpu / alone, cores)
    expected = predicted(students, alone, workers, slowdown=slowdown)
    print(f"one reference alone: {alone:.1f} s, keeping {cpu / alone:.2f} of {cores} cores busy")
    print(f"linear_grading, {students} references on {workers} workers: predicted {expected:.0f} s "
          f"({slowdown:.2f}x slower each beside the others), measured {measured:.0f} s "
          f"({measured / expected - 1:+.0%}; graded {len(summary.graded)}, failed {len(summary.failed)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8, 32],
                        help="worker counts to predict for (one submission at a time each)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 4],
                        help="GPU counts to predict for, where a GPU time is known")
    parser.add_argument("--seconds", nargs="*", default=[], metavar="ASSIGNMENT=S",
                        help="per-submission CPU seconds replacing or adding to the measured ones")
    parser.add_argument("--gpu-seconds", nargs="*", default=[], metavar="ASSIGNMENT=S",
                        help="per-submission seconds on one GPU, one kernel at a time")
    parser.add_argument("--measure", action="store_true",
                        help="grade linear_grading on a LocalCluster and print predicted vs measured")
    parser.add_argument("--students", type=int, default=4, help="submissions --measure grades")
    args = parser.parse_args()
    cpu = {**CPU_SECONDS, **_pairs(args.seconds, "--seconds")}
    gpu = {**GPU_SECONDS, **_gpu_pairs(args.gpu_seconds)}
    print(table(cpu, gpu, args.workers, args.gpus))
    print("\nGPU columns: " + "; ".join(f"{name}: {p} at once per GPU in {s:g} s" for name, (p, s) in gpu.items())
          + ". Give --gpu-seconds ASSIGNMENT=S for others (one kernel per GPU).")
    if args.measure:
        measure(args.students, args.workers[0])


if __name__ == "__main__":
    main()
