"""``autograder export``, ``autograder leaderboard`` and ``autograder gradescope-bundle``.

:func:`add_commands` registers both on the command line's subparsers; each
sets ``run``, a function of the parsed arguments that returns the exit code:
0 when everything asked for was written, 2 with a message on standard error
when an input is missing or wrong.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from autograder import options
from autograder.course import CourseError, default_course_dir, known_assignments
from autograder.records.common import RecordsError, load_results_reporting

DEFAULT_GRADEBOOK = "default"
"""``--gradebook`` given without a URL: nbgrader's database in the course directory."""


def add_commands(subparsers) -> None:
    """Add ``export``, ``leaderboard`` and ``gradescope-bundle`` to ``subparsers``."""
    export = subparsers.add_parser(
        "export", help="write a graded batch as a CSV gradebook, JUnit XML or into nbgrader's gradebook",
        description="Read the results of a batch (OUT/<student>/results.json, as `autograder grade "
                    "FOLDER --output-dir OUT` writes them) and write them in other formats.",
    )
    options.add_batch(export)
    options.add_assignment(export, required=False,
                           help="export only this assignment's results (default: all)")
    export.add_argument("--csv", type=Path, metavar="PATH",
                        help="a CSV gradebook: one row per student, one column per check")
    export.add_argument("--junit", type=Path, metavar="PATH",
                        help="JUnit XML: one test suite per student, one test case per check")
    export.add_argument("--gradebook", nargs="?", const=DEFAULT_GRADEBOOK, metavar="DB_URL",
                        help="record the scores in nbgrader's gradebook (without a URL: "
                             "sqlite:///<course-dir>/gradebook.db)")
    options.add_course_dir(export)
    export.set_defaults(run=run_export)

    board = subparsers.add_parser(
        "leaderboard", help="rank a graded batch's models: leaderboard.html and leaderboard.csv",
        description="Rank the students of a graded batch by the metric their suite measured "
                    "(test accuracy, or test MAE), ties to fewer parameters, then shorter training. "
                    "Students appear under the LEADERBOARD_ALIAS their notebook sets, else under an "
                    "anonymous name derived from the course's secret; never by id unless --show-ids.",
    )
    options.add_batch(board)
    options.add_assignment(board, required=False,
                           help="the assignment to rank (needed when OUT holds several)")
    board.add_argument("--output-dir", type=Path, help="where to write the two files (default: OUT)")
    board.add_argument("--show-ids", action="store_true",
                       help="name every student by id instead of alias or anonymous name")
    options.add_course_dir(board, help="nbgrader course directory, whose secret makes the "
                                       "anonymous names (default: this checkout)")
    board.set_defaults(run=run_leaderboard)

    from autograder.records.gradescope import DEFAULT_VISIBILITY, VISIBILITIES
    from autograder.records.gradescope_bundle import SANDBOXES

    bundle = subparsers.add_parser(
        "gradescope-bundle", help="build the autograder zip of a Gradescope programming assignment",
        description="Build the zip to upload as a Gradescope assignment's autograder: setup.sh, "
                    "run_autograder and the kit's source with this assignment's hidden suite. "
                    "Keep it private: it holds the hidden suite and the solution.",
    )
    options.add_assignment(bundle)
    bundle.add_argument("-o", "--output", type=Path, required=True, metavar="ZIP",
                        help="where to write the zip, e.g. bundle.zip")
    options.add_course_dir(bundle)
    bundle.add_argument("--visibility", choices=VISIBILITIES, default=DEFAULT_VISIBILITY,
                        help="when students see each check's result (default: %(default)s)")
    bundle.add_argument("--sandbox", choices=SANDBOXES, default="auto",
                        help="how run_autograder confines the student's kernel (default: %(default)s)")
    bundle.set_defaults(run=run_gradescope_bundle)


def _fail(message: str) -> int:
    print(f"autograder: error: {message}", file=sys.stderr)
    return 2


def _check_assignment(name: str) -> None:
    if name not in known_assignments():
        raise RecordsError(f"Unknown assignment {name!r}: it has no hidden suite in this kit. "
                           f"Known assignments: {', '.join(known_assignments()) or 'none'}.")


def run_export(args: argparse.Namespace) -> int:
    if not (args.csv or args.junit or args.gradebook):
        return _fail("nothing to export: give --csv PATH, --junit PATH and/or --gradebook [DB_URL].")
    try:
        results = _load(args.from_dir, args.assignment)
        if args.csv:
            from autograder.records.gradebook_csv import write_csv

            write_csv(args.csv, results)
            print(f"wrote {len(results)} row(s) to {args.csv}")
        if args.junit:
            from autograder.records.junit import write_junit

            write_junit(args.junit, results)
            print(f"wrote {len(results)} test suite(s) to {args.junit}")
        if args.gradebook:
            from autograder.records.nbgrader_gradebook import default_db_url, write_gradebook

            course_dir = args.course_dir.resolve() if args.course_dir else default_course_dir()
            db_url = default_db_url(course_dir) if args.gradebook == DEFAULT_GRADEBOOK else args.gradebook
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                write_gradebook(db_url, results, course_dir=course_dir)
            for warning in caught:
                print(f"autograder: warning: {warning.message}", file=sys.stderr)
            print(f"recorded {len(results)} submission(s) in {db_url}")
    except (RecordsError, CourseError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write the export: {exc}.")
    return 0


def _load(from_dir: Path, assignment: str | None) -> list:
    """The results in ``from_dir`` (warnings printed), of ``assignment`` when given."""
    if assignment:
        _check_assignment(assignment)
    results = load_results_reporting(from_dir)
    if not results:
        raise RecordsError(
            f"{from_dir} holds no <student>/results.json. Grade the class first: "
            f"`autograder grade SUBMISSIONS --assignment NAME --output-dir {from_dir}`."
        )
    if assignment:
        found = sorted({r.assignment for r in results})
        results = [r for r in results if r.assignment == assignment]
        if not results:
            raise RecordsError(f"{from_dir} holds no results for {assignment!r}, only for "
                               f"{', '.join(found)}. Check --assignment or --from.")
    return results


def run_leaderboard(args: argparse.Namespace) -> int:
    from autograder.datasets.served import course_holdout_seed
    from autograder.records.leaderboard import LEADERBOARD, rank, write_leaderboard

    try:
        results = _load(args.from_dir, args.assignment)
        assignments = sorted({r.assignment for r in results})
        if len(assignments) > 1:
            raise RecordsError(f"{args.from_dir} holds results of {', '.join(assignments)}: "
                               "choose one with --assignment.")
        course_dir = args.course_dir.resolve() if args.course_dir else default_course_dir()
        entries = rank(results, key=str(course_holdout_seed(course_dir)).encode(),
                       show_ids=args.show_ids)
        if not entries:
            raise RecordsError(f"no result in {args.from_dir} has a metric to rank by "
                               f"({' or '.join(LEADERBOARD)}): its suite measures none, or no "
                               "model was graded.")
        paths = write_leaderboard(args.output_dir or args.from_dir, entries, assignments[0])
    except (RecordsError, CourseError, ValueError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write the leaderboard: {exc}.")
    print(f"ranked {len(entries)} of {len(results)} student(s): {paths[0]}, {paths[1]}")
    return 0


def run_gradescope_bundle(args: argparse.Namespace) -> int:
    from autograder.records.gradescope_bundle import write_bundle

    try:
        _check_assignment(args.assignment)
        path = write_bundle(args.output, assignment=args.assignment, course_dir=args.course_dir,
                            sandbox=args.sandbox, visibility=args.visibility)
    except (RecordsError, CourseError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror or exc}.")
    print(f"wrote {path}: upload it as the autograder of a Gradescope programming assignment "
          f"for {args.assignment}. Keep it private: it holds the hidden suite and the solution.")
    return 0
