"""How long a class takes to grade on W workers (and G GPUs), from the
measured grading time of one submission per assignment.

    python benchmarks/cluster_plan.py --workers 2 8 32
    python benchmarks/cluster_plan.py --seconds mnist_cnn=40 --gpu-seconds mnist_cnn=8 --gpus 4
    python benchmarks/cluster_plan.py --measure      # a LocalCluster of 2 grades linear_grading

A worker grades one submission at a time (``dask worker --nthreads 1``, or
``--cluster local:N``), so a class of n takes ceil(n / W) rounds of the
per-submission time; on GPUs, ceil(n / G) rounds of the GPU time, when one is
known. The CPU times are docs/thresholds.md's "whole grading" on the 2-core
development machine (one submission alone on the machine); a worker with
fewer cores is slower. No GPU time has been measured yet.
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
GPU_SECONDS: dict[str, float] = {}
"""Whole grading on one GPU, seconds: none measured yet (benchmarks/gpu_pack.py would)."""
CLASS_SIZES = (100, 500, 2000)


def predicted(students: int, seconds: float, workers: int) -> float:
    return math.ceil(students / workers) * seconds


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def table(cpu: dict[str, float], gpu: dict[str, float], workers: list[int], gpus: list[int]) -> str:
    columns = [f"{w} workers" for w in workers] + [f"{g} GPUs" for g in gpus]
    lines = ["| assignment | s per submission | students | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for name, seconds in cpu.items():
        for n in CLASS_SIZES:
            cells = [_duration(predicted(n, seconds, w)) for w in workers]
            cells += [_duration(predicted(n, gpu[name], g)) if name in gpu else "not measured"
                      for g in gpus]
            lines.append(f"| {name} | {seconds:g} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    """Grade ``students`` copies of the linear_grading reference on a
    LocalCluster of ``workers`` processes and compare with the prediction."""
    from distributed import LocalCluster

    from autograder.course import load_assignment
    from autograder.engine import batch

    assignment = load_assignment("linear_grading")
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         dashboard_address=":0") as cluster:
        folder = Path(tmp) / "class"
        folder.mkdir()
        for i in range(students):
            shutil.copy(assignment.source_notebook, folder / f"student{i:03d}.ipynb")
        started = time.perf_counter()
        summary = batch.grade_batch(folder, assignment, output_dir=Path(tmp) / "out",
                                    cluster=cluster.scheduler_address, progress=print)
        measured = time.perf_counter() - started
    expected = predicted(students, CPU_SECONDS["linear_grading"], workers)
    print(f"linear_grading, {students} references on {workers} workers: predicted {expected:.0f} s, "
          f"measured {measured:.0f} s (graded {len(summary.graded)}, failed {len(summary.failed)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8, 32],
                        help="worker counts to predict for (one submission at a time each)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 4],
                        help="GPU counts to predict for, where a GPU time is known")
    parser.add_argument("--seconds", nargs="*", default=[], metavar="ASSIGNMENT=S",
                        help="per-submission CPU seconds replacing or adding to the measured ones")
    parser.add_argument("--gpu-seconds", nargs="*", default=[], metavar="ASSIGNMENT=S",
                        help="per-submission seconds on one GPU (none measured yet)")
    parser.add_argument("--measure", action="store_true",
                        help="grade linear_grading on a LocalCluster and print predicted vs measured")
    parser.add_argument("--students", type=int, default=4, help="submissions --measure grades")
    args = parser.parse_args()
    cpu = {**CPU_SECONDS, **_pairs(args.seconds, "--seconds")}
    gpu = {**GPU_SECONDS, **_pairs(args.gpu_seconds, "--gpu-seconds")}
    print(table(cpu, gpu, args.workers, args.gpus))
    if not gpu:
        print("\nNo GPU grading time is measured yet: give --gpu-seconds ASSIGNMENT=S to predict GPUs.")
    if args.measure:
        measure(args.students, args.workers[0])


if __name__ == "__main__":
    main()
