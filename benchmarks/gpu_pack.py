"""How many kernels to pack onto a GPU: grade N copies of an assignment's
reference solution at once, sandboxed, on the GPU, and compare with one.

Usage::

    python benchmarks/gpu_pack.py [--copies 1 8 16 32] [--assignment mnist_cnn]
                                  [--gpus auto] [--per-gpu N] [--sandbox bwrap]

For each N, a flat folder of N copies of the reference notebook is graded by
``autograder grade FOLDER --workers N --gpus G [--per-gpu P]`` while
``nvidia-smi`` is sampled twice a second. Prints, per N: wall time (s); the
speed-up, N times the wall time of one copy divided by the wall time of N;
the peak GPU memory of a kernel (MiB, the largest and the median over the
kernels seen); the mean utilisation of the GPUs graded on (%); and whether
every copy got full marks. One copy is always graded first, as the baseline.
With ``--workers N``, copies beyond the GPUs' slots (``--per-gpu`` per GPU)
wait for one, so the wall time includes the grader's own queueing.

Needs an NVIDIA GPU with the driver's ``nvidia-smi`` and a GPU build of the
Keras backend (see README, "GPU graders"); without a GPU it stops at once and
says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from autograder.course import load_assignment
from autograder.engine import gpu

SAMPLE_SECONDS = 0.5


class Sampler(threading.Thread):
    """Samples ``nvidia-smi`` until stopped: each compute process's GPU
    memory (MiB) and each watched GPU's utilisation (%)."""

    def __init__(self, watched: list[gpu.Gpu]):
        super().__init__(daemon=True)
        self.uuids = {g.uuid for g in watched}
        self.indices = {str(g.index) for g in watched}
        self.peak_mib: dict[str, int] = {}
        """Host PID of a process on a watched GPU -> its largest sampled memory, MiB."""
        self.utilisation: list[int] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            for pid, uuid, used in self._rows("--query-compute-apps=pid,gpu_uuid,used_memory"):
                if uuid in self.uuids and used.isdigit():
                    self.peak_mib[pid] = max(self.peak_mib.get(pid, 0), int(used))
            for index, busy in self._rows("--query-gpu=index,utilization.gpu"):
                if index in self.indices and busy.isdigit():
                    self.utilisation.append(int(busy))

    def stop(self) -> None:
        self._done.set()
        self.join()

    @staticmethod
    def _rows(query: str) -> list[list[str]]:
        listing = subprocess.run(["nvidia-smi", query, "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=30)
        return [[field.strip() for field in line.split(",")] for line in listing.stdout.splitlines()]


def grade_copies(n: int, *, assignment, watched: list[gpu.Gpu], options: argparse.Namespace,
                 work: Path) -> dict:
    """Grade ``n`` copies at once on the ``watched`` GPUs; what was measured."""
    submissions, out = work / f"copies-{n}", work / f"graded-{n}"
    submissions.mkdir()
    for i in range(n):
        shutil.copy(assignment.source_notebook, submissions / f"copy{i:02d}.ipynb")
    command = [sys.executable, "-m", "autograder.cli", "grade", str(submissions),
               "--assignment", assignment.name, "--output-dir", str(out), "--workers", str(n),
               "--sandbox", options.sandbox, "--gpus", options.gpus, "--force"]
    if options.per_gpu is not None:
        command += ["--per-gpu", str(options.per_gpu)]
    sampler = Sampler(watched)
    sampler.start()
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    sampler.stop()
    if completed.returncode not in (0, 1):
        sys.exit(f"gpu_pack: {' '.join(command)} exited with {completed.returncode}:\n"
                 f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    results = [json.loads(p.read_text()) for p in out.glob("*/results.json")]
    peaks = sorted(sampler.peak_mib.values())
    return {
        "wall": wall,
        "peak_max": peaks[-1] if peaks else None,
        "peak_median": statistics.median(peaks) if peaks else None,
        "kernels_seen": len(peaks),
        "utilisation": statistics.mean(sampler.utilisation) if sampler.utilisation else None,
        "full": len(results) == n and all(r["score"] == r["max_score"] for r in results),
        "graded": len(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 8, 16, 32],
                        help="how many copies to grade at once, one run each (default 1 8 16 32)")
    parser.add_argument("--assignment", default="mnist_cnn")
    parser.add_argument("--gpus", default="auto", help="passed to autograder grade (auto, none, 0,1)")
    parser.add_argument("--per-gpu", type=int, help="passed to autograder grade (default: its own)")
    parser.add_argument("--sandbox", default="bwrap", help="passed to autograder grade (default bwrap)")
    args = parser.parse_args()

    found = gpu.detect_gpus()
    if not found:
        sys.exit("gpu_pack: no GPU found (nvidia-smi is not installed, fails, or lists no GPU). "
                 "This benchmark measures grading on GPUs; run it on a machine with an NVIDIA GPU "
                 "and a GPU build of the Keras backend.")
    try:
        watched = gpu.select_gpus(args.gpus, available=found)
    except gpu.GpuError as error:
        sys.exit(f"gpu_pack: {error}")
    if not watched:
        sys.exit("gpu_pack: --gpus none grades on the CPU; give auto or GPU indices.")
    assignment = load_assignment(args.assignment)
    copies = sorted({1, *args.copies})
    print(f"{args.assignment}, sandbox {args.sandbox}, --gpus {args.gpus}, --per-gpu "
          f"{args.per_gpu or 'default'}; GPUs: "
          + "; ".join(f"{g.index} {g.name} {g.memory_mib} MiB" for g in watched))
    print(f"{'copies':>6} {'wall s':>8} {'speed-up':>9} {'peak MiB/kernel (max, median)':>30} "
          f"{'kernels seen':>13} {'mean GPU util %':>16} {'all full marks':>15}")
    work = Path(tempfile.mkdtemp(prefix="autograder-gpu-pack-"))
    try:
        single = None
        for n in copies:
            row = grade_copies(n, assignment=assignment, watched=watched, options=args, work=work)
            single = single or row["wall"]
            peak = ("-" if row["peak_max"] is None
                    else f"{row['peak_max']}, {row['peak_median']:.0f}")
            utilisation = "-" if row["utilisation"] is None else f"{row['utilisation']:.0f}"
            full = "yes" if row["full"] else f"no ({row['graded']}/{n} graded)"
            print(f"{n:>6} {row['wall']:8.1f} {n * single / row['wall']:9.2f} {peak:>30} "
                  f"{row['kernels_seen']:>13} {utilisation:>16} {full:>15}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
