"""The class leaderboard of a graded batch: ``leaderboard.html`` and
``leaderboard.csv``.

One row per student whose suite measured the assignment's headline metric
(the one Gradescope's leaderboard shows, :data:`gradescope.LEADERBOARD`:
test accuracy, higher first, or test MAE, lower first), best first. Ties go
to the model with fewer parameters (a ``parameters`` metric, where the suite
records one), then to the shorter training (the grader's own measure of the
notebook's execution and export). Rows equal on all three share a rank.

A student appears under the alias they set in their notebook
(``LEADERBOARD_ALIAS = "..."``, see :func:`autograder.engine.prepare.declared_alias`)
or else under an anonymous name that the course's secret derives from their
id (the same name in every board of the course, and no way back to the id);
their id only when the instructor asks for ids. Everything a student wrote
is escaped in the page and cannot start a formula in the CSV.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.atomic import write_atomic
from autograder.feedback._page import esc, fmt_number, page
from autograder.records.gradescope import LEADERBOARD
from autograder.results import GradingResult

HTML_FILE, CSV_FILE = "leaderboard.html", "leaderboard.csv"
COLUMNS = ("rank", "name", "metric", "value", "parameters", "training_seconds", "device")


@dataclass(frozen=True)
class Entry:
    """One row of the board."""

    rank: int
    name: str
    metric: str
    """The column's label, e.g. ``Test accuracy``."""
    value: float
    parameters: int | None
    training_seconds: float | None
    device: str

    def to_dict(self) -> dict:
        return asdict(self)


def anonymous_name(student: str, key: bytes) -> str:
    """A name for ``student`` that only the holder of ``key`` can link to them."""
    return "Anonymous " + hmac.new(key, student.encode(), hashlib.sha256).hexdigest()[:6]


def headline_metric(results: Sequence[GradingResult]) -> str | None:
    """The first metric of :data:`LEADERBOARD` that some result measured."""
    return next((m for m in LEADERBOARD if any(m in r.metrics for r in results)), None)


def rank(results: Sequence[GradingResult], *, key: bytes, show_ids: bool = False) -> list[Entry]:
    """The board's rows for ``results`` (see the module), best first.
    ``key`` makes the anonymous names; ``show_ids`` names every student by id."""
    metric = headline_metric(results)
    if metric is None:
        return []
    label, order = LEADERBOARD[metric]
    rows = []
    for result in results:
        value = result.metrics.get(metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        parameters = result.metrics.get("parameters")
        seconds = result.timings.get("execute")
        if seconds is not None:  # with the export: a replaced save that trains on is counted too
            seconds += result.timings.get("export", 0.0)
        student = result.student or Path(result.submission).stem
        name = student if show_ids else (result.alias or anonymous_name(student, key))
        tie = (-value if order == "desc" else value,
               parameters if parameters is not None else math.inf,
               seconds if seconds is not None else math.inf)
        rows.append((tie, name, round(float(value), 4), parameters, seconds, result.device))
    rows.sort(key=lambda row: row[0])
    entries, previous_tie = [], None
    for position, (tie, name, value, parameters, seconds, device) in enumerate(rows, start=1):
        number = entries[-1].rank if tie == previous_tie else position
        entries.append(Entry(number, name, label, value,
                             int(parameters) if parameters is not None else None,
                             round(seconds, 1) if seconds is not None else None, device))
        previous_tie = tie
    return entries


def _csv_text(entries: Sequence[Entry]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for entry in entries:
        row = entry.to_dict()
        # A spreadsheet would run a name that starts like a formula.
        if row["name"][:1] in ("=", "+", "-", "@", "\t", "\r"):
            row["name"] = "'" + row["name"]
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return buffer.getvalue()


def _html(entries: Sequence[Entry], assignment: str) -> str:
    label = entries[0].metric if entries else "Score"
    head = ("<tr><th>Rank</th><th>Name</th>"
            f"<th>{esc(label)}</th><th>Parameters</th><th>Training (s)</th><th>Device</th></tr>")
    body = "".join(
        f"<tr><td>{e.rank}</td><td>{esc(e.name)}</td><td>{fmt_number(e.value)}</td>"
        f"<td>{'' if e.parameters is None else f'{e.parameters:,}'}</td>"
        f"<td>{'' if e.training_seconds is None else fmt_number(e.training_seconds)}</td>"
        f"<td>{esc(e.device)}</td></tr>"
        for e in entries)
    return page(f"{assignment}: leaderboard", (
        f"<header><h1>{esc(assignment)}: leaderboard</h1><p class=\"meta\">{len(entries)} "
        "graded model(s), best first; ties go to fewer parameters, then shorter training.</p>"
        f"</header><table>{head}{body}</table>"))


def write_leaderboard(out_dir: Path, entries: Sequence[Entry], assignment: str) -> list[Path]:
    """Write the board's page and CSV into ``out_dir``; their paths."""
    out_dir = Path(out_dir)
    write_atomic(out_dir / HTML_FILE, _html(entries, assignment))
    write_atomic(out_dir / CSV_FILE, _csv_text(entries))
    return [out_dir / HTML_FILE, out_dir / CSV_FILE]
