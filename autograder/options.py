"""Command-line options that several commands share, each declared once with
its default and help; a command may give its own help where the option means
a little more there."""

from __future__ import annotations

from pathlib import Path

ASSIGNMENT_HELP = "assignment name, e.g. linear_grading"
COURSE_DIR_HELP = "nbgrader course directory (default: this checkout)"
BATCH_HELP = "the batch's output folder"


def add_assignment(parser, *, required: bool = True, help: str = ASSIGNMENT_HELP) -> None:
    """``--assignment NAME``."""
    parser.add_argument("--assignment", required=required, help=help)


def add_course_dir(parser, *, help: str = COURSE_DIR_HELP) -> None:
    """``--course-dir DIR``: where nbgrader's course lives (default: this checkout)."""
    parser.add_argument("--course-dir", type=Path, help=help)


def add_batch(parser, *, required: bool = True, help: str = BATCH_HELP) -> None:
    """``--from OUT``: a graded batch's output folder, as ``args.from_dir``."""
    parser.add_argument("--from", dest="from_dir", type=Path, required=required, metavar="OUT",
                        help=help)
