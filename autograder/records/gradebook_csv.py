"""A CSV gradebook: one row per submission, one column per check.

Columns: ``student``, ``assignment``, ``score``, ``max_score``, then the
points of each check, in the suite's order. Rows are sorted by student (then
assignment). A submission without a check (graded by an older suite, say)
gets an empty cell there, which spreadsheets tell apart from a 0.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from autograder.atomic import write_atomic
from autograder.records.common import check_order, points, student_label
from autograder.results import GradingResult

FIXED_COLUMNS = ("student", "assignment", "score", "max_score")


def to_csv(results: list[GradingResult], *, checks: list[str] | None = None) -> str:
    """The gradebook as CSV text.

    ``checks`` picks and orders the check columns; by default every check in
    ``results``, in the suite's order (:func:`~autograder.records.common.check_order`).
    """
    checks = check_order(results) if checks is None else list(checks)
    clash = set(checks) & set(FIXED_COLUMNS)
    if clash:
        raise ValueError(f"check name(s) {', '.join(sorted(clash))} would repeat a fixed column")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *checks])
    for result in sorted(results, key=lambda r: (student_label(r), r.assignment)):
        earned = {t.name: t.score for t in result.tests}
        writer.writerow([
            student_label(result), result.assignment,
            points(result.score), points(result.max_score),
            *(points(earned[name]) if name in earned else "" for name in checks),
        ])
    return buffer.getvalue()


def write_csv(path: Path, results: list[GradingResult], *, checks: list[str] | None = None) -> None:
    """Write :func:`to_csv` to ``path`` atomically."""
    write_atomic(path, to_csv(results, checks=checks))
