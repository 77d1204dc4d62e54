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
from autograder.engine import sandbox
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
    grade.add_argument("--sandbox", choices=sandbox.MODES, default="auto",
                       help="confine the student's kernel: bwrap, none, or auto (bwrap where it works)")
    limits = grade.add_argument_group("limits (override the assignment's assignment.toml)")
    limits.add_argument("--cell-timeout", type=int, help="seconds one cell may run")
    limits.add_argument("--notebook-timeout", type=int, help="seconds the whole notebook may run")
    limits.add_argument("--memory-gib", type=float, help="memory of the kernel and its children, GiB")
    limits.add_argument("--max-processes", type=int, help="processes the kernel may have at once")
    limits.add_argument("--max-output-mib", type=float, help="total cell output kept, MiB")

    commands.add_parser("list", help="list the assignments that have hidden suites")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        print("\n".join(known_assignments()))
        return 0
    try:
        assignment = load_assignment(
            args.assignment, args.course_dir,
            cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
            memory_gib=args.memory_gib, max_processes=args.max_processes,
            max_output_mib=args.max_output_mib,
        )
        result = grade_submission(
            args.submission, assignment, workdir=args.workdir, sandbox_mode=args.sandbox
        )
    except (CourseError, EvaluationError, KernelStartError, sandbox.SandboxError) as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return 2
    for note in result.notes:
        if note.startswith("WARNING"):
            print(note, file=sys.stderr)
    if args.json_path:
        write_json(result, args.json_path)
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
