"""Wall time of grading a reference solution, split by engine stage.

Usage: ``python benchmarks/grade_reference.py [ASSIGNMENT] [REPEATS]``
(default: linear_grading, 2 repeats). Stages: prepare (merge the notebook),
kernel_start, execute (the student's cells), export (saving artifacts),
evaluate (the hidden suite in its own process).
"""

import sys

from autograder.course import load_assignment
from autograder.engine.grade import grade_submission

STAGES = ("prepare", "kernel_start", "execute", "export", "evaluate")


def main(name="linear_grading", repeats=2):
    assignment = load_assignment(name)
    header = " ".join(f"{s:>12}" for s in STAGES)
    print(f"{name}: grading {assignment.source_notebook.name} {repeats} time(s)")
    print(f"{'run':>3} {header} {'total':>8} {'score':>9}")
    for run in range(1, repeats + 1):
        result = grade_submission(assignment.source_notebook, assignment)
        stages = " ".join(f"{result.timings.get(s, float('nan')):12.2f}" for s in STAGES)
        score = f"{result.score:g}/{result.max_score:g}"
        print(f"{run:>3} {stages} {result.execution_time:8.2f} {score:>9}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "linear_grading",
         int(sys.argv[2]) if len(sys.argv) > 2 else 2)
