"""``autograder``: the command line, a thin layer over the engine.

Exit codes: 0 when grading ran, whatever the score; 2 when it could not run
(unknown assignment, missing course files, a broken hidden suite).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import __version__
from autograder.course import CourseError, known_assignments, load_assignment
from autograder.engine.evaluate import EvaluationError
from autograder.engine.execute import KernelStartError
from autograder.engine.grade import grade_submission
from autograder.engine.record import summary, write_json


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder", description="Grade Keras exercise notebooks with hidden suites."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade one submitted notebook")
    grade.add_argument("submission", type=Path, help="the student's .ipynb file")
    grade.add_argument("--assignment", required=True, help="assignment name, e.g. linear_grading")
    grade.add_argument("--json", type=Path, dest="json_path", help="write results to this JSON file")
    grade.add_argument("--course-dir", type=Path, help="nbgrader course directory (default: this checkout)")
    grade.add_argument("--workdir", type=Path, help="keep the executed notebook and artifacts here")
    grade.add_argument("--cell-timeout", type=int, help="seconds per cell (overrides assignment.toml)")

    commands.add_parser("list", help="list the assignments that have hidden suites")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        print("\n".join(known_assignments()))
        return 0
    try:
        assignment = load_assignment(
            args.assignment, args.course_dir, cell_timeout=args.cell_timeout
        )
        result = grade_submission(args.submission, assignment, workdir=args.workdir)
    except (CourseError, EvaluationError, KernelStartError) as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return 2
    if args.json_path:
        write_json(result, args.json_path)
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
