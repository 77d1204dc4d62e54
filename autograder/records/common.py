"""What every record format shares: reading a batch's results back, the order
of checks across submissions, how points are written, and atomic writes."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from autograder.errors import StopGrading
from autograder.results import RESULTS_FILE, GradingResult



class RecordsError(StopGrading):
    """An input to an export is missing or wrong; the message says what to do."""


class RecordsWarning(UserWarning):
    """Something was skipped (an unreadable file, a score with no place)."""


def load_results(out_dir: Path) -> list[GradingResult]:
    """Every ``<student>/results.json`` under the batch folder ``out_dir``,
    ordered by folder name.

    A file that cannot be read as a result is skipped with a
    :class:`RecordsWarning` naming it, so one damaged file does not stop an
    export. A result that records no student gets its folder's name. Keys the
    batch adds (such as ``fingerprint``) are ignored. Raises
    :class:`RecordsError` when ``out_dir`` is not a folder.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        what = "is a file, not a folder" if out_dir.exists() else "does not exist"
        raise RecordsError(
            f"{out_dir} {what}. Give the output folder of a batch (the --output-dir of "
            "`autograder grade SUBMISSIONS --assignment NAME`), which holds one "
            f"<student>/{RESULTS_FILE} per student."
        )
    results = []
    for path in sorted(out_dir.glob(f"*/{RESULTS_FILE}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"it holds a JSON {type(data).__name__}, not an object")
            result = GradingResult.from_dict(data)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            warnings.warn(
                f"skipped {path}: it is not a readable grading result ({reason}). "
                "Regrade that student, or remove the file.",
                RecordsWarning, stacklevel=2,
            )
            continue
        if not result.student:
            result.student = path.parent.name
        results.append(result)
    return results


def check_order(results: list[GradingResult]) -> list[str]:
    """The names of every check in ``results``, in the suite's order.

    Each result lists its checks in the order the suite ran them; a check
    that only some results have is placed right after the check it follows
    in the first result that has it, so one submission with a missing check
    does not reorder the others.
    """
    order: list[str] = []
    for result in results:
        position = 0
        for check in result.tests:
            if check.name in order:
                position = order.index(check.name) + 1
            else:
                order.insert(position, check.name)
                position += 1
    return order


def points(value: float) -> str:
    """Points as people write them: ``10``, ``6.5``, ``0.3333``."""
    text = f"{round(float(value), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def student_label(result: GradingResult) -> str:
    """Who a result belongs to: the student, else the submitted file's name."""
    return result.student or Path(result.submission).stem


def load_results_reporting(out_dir: Path) -> list[GradingResult]:
    """:func:`load_results`, each file it skips named on standard error
    (``autograder: warning: ...``) for the person running the command."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = load_results(out_dir)
    for warning in caught:
        print(f"autograder: warning: {warning.message}", file=sys.stderr)
    return results
