"""The class summary of a batch: how the class scored, and which concept it missed.

:func:`write_class_summary` writes three files into the batch's output folder:

- ``class_summary.json``: the numbers (:func:`summarize`);
- ``score_histogram.png``: the distribution of scores;
- ``class_summary.html``: both, self-contained, for the instructor.

Checks are listed with the most-missed first (lowest pass rate, then lowest
share of points), each with its one-line description, so the concept the
class struggled with is at the top.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autograder.atomic import write_atomic
from autograder.feedback._page import esc, figure_html, fmt_number, new_figure, page, png_bytes
from autograder.results import GradingResult, Status

SUMMARY_JSON = "class_summary.json"
SUMMARY_HTML = "class_summary.html"
HISTOGRAM_PNG = "score_histogram.png"
STATUSES = [s.value for s in Status]


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None}
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def _student(result: GradingResult) -> str:
    return result.student or Path(result.submission).name


def summarize(results: Sequence[GradingResult]) -> dict:
    """What ``class_summary.json`` holds, computed from ``results``.

    Keys: ``assignment`` (its name; a sorted list if several), ``n_graded``,
    ``max_score``, ``score`` (n, mean, median, min, max), ``checks`` (per
    check: name, description, max_score, n, passed, pass_rate, mean_score,
    mean_fraction of its points, and a count per status; most-missed first),
    ``metrics`` (per measurement the suite made: n, mean, median, min, max)
    and ``students`` (student, submission, score, max_score; by student).
    """
    results = list(results)
    assignments = sorted({r.assignment for r in results})
    checks: dict[str, dict] = {}
    for result in results:
        for check in result.tests:
            entry = checks.setdefault(check.name, {
                "name": check.name, "description": "", "max_score": check.max_score,
                "scores": [], "statuses": dict.fromkeys(STATUSES, 0), "order": len(checks),
            })
            entry["description"] = entry["description"] or check.description
            entry["max_score"] = max(entry["max_score"], check.max_score)
            entry["scores"].append((check.score, check.max_score))
            status = check.status.value if isinstance(check.status, Status) else str(check.status)
            entry["statuses"][status] = entry["statuses"].get(status, 0) + 1

    rows = []
    for entry in checks.values():
        n = len(entry["scores"])
        passed = entry["statuses"][Status.PASS.value]
        fractions = [s / m if m else 1.0 for s, m in entry["scores"]]
        rows.append({
            "name": entry["name"],
            "description": entry["description"],
            "max_score": entry["max_score"],
            "n": n,
            "passed": passed,
            "pass_rate": round(passed / n, 4),
            "mean_score": round(statistics.fmean(s for s, _ in entry["scores"]), 4),
            "mean_fraction": round(statistics.fmean(fractions), 4),
            "statuses": entry["statuses"],
            "_order": entry["order"],
        })
    rows.sort(key=lambda r: (r["pass_rate"], r["mean_fraction"], r["_order"]))
    for row in rows:
        del row["_order"]

    metric_values: dict[str, list[float]] = {}
    for result in results:
        for name, value in result.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                metric_values.setdefault(str(name), []).append(float(value))

    return {
        "assignment": assignments[0] if len(assignments) == 1 else (assignments or None),
        "n_graded": len(results),
        "max_score": max((r.max_score for r in results), default=0.0),
        "score": _stats([r.score for r in results]),
        "checks": rows,
        "metrics": {name: _stats(values) for name, values in sorted(metric_values.items())},
        "students": sorted(
            ({"student": _student(r), "submission": r.submission, "score": r.score,
              "max_score": r.max_score} for r in results),
            key=lambda s: (s["student"], s["submission"]),
        ),
    }


def _histogram_png(summary: dict, scores: list[float]) -> bytes:
    max_score = float(summary["max_score"]) or 1.0
    figure = new_figure(6.0, 3.4)
    ax = figure.subplots()
    margin = max_score * 0.03
    if scores:
        values, counts = np.unique(np.round(scores, 2), return_counts=True)
        if len(values) <= 40:  # one bar per score reached: 6.5 is not lumped with 6
            ax.bar(values, counts, width=2 * margin, color="#4a78b5")
        else:
            ax.hist(scores, bins=np.linspace(0, max_score, 21), color="#4a78b5", edgecolor="white")
        ax.axvline(summary["score"]["mean"], color="#c23030", linewidth=1.5,
                   label=f"mean {fmt_number(summary['score']['mean'])}")
        ax.axvline(summary["score"]["median"], color="#2e8b57", linewidth=1.5, linestyle="--",
                   label=f"median {fmt_number(summary['score']['median'])}")
        ax.legend(loc="upper left")
    else:
        ax.text(0.5, 0.5, "no submissions graded", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlim(-2 * margin, max_score + 2 * margin)
    ax.set_xlabel(f"score (out of {fmt_number(max_score)})")
    ax.set_ylabel("students")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Scores of {summary['n_graded']} submission{'s' if summary['n_graded'] != 1 else ''}")
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(figure)


def _html(summary: dict, histogram: bytes) -> str:
    assignment = summary["assignment"]
    name = ", ".join(assignment) if isinstance(assignment, list) else (assignment or "no assignment")
    score = summary["score"]
    parts = [f"<header><h1>Class summary: {esc(name)}</h1>"]
    if summary["n_graded"]:
        parts.append(
            f"<p class=\"meta\">{summary['n_graded']} submissions graded, out of "
            f"{fmt_number(summary['max_score'])} points: mean {fmt_number(score['mean'])}, "
            f"median {fmt_number(score['median'])}, lowest {fmt_number(score['min'])}, "
            f"highest {fmt_number(score['max'])}.</p></header>"
        )
    else:
        parts.append("<p class=\"meta\">No submissions were graded.</p></header>")
    parts.append(figure_html(histogram, "histogram of scores"))

    parts.append("<h2>Checks, most missed first</h2>")
    if summary["checks"]:
        rows = []
        for check in summary["checks"]:
            statuses = ", ".join(f"{count} {esc(status)}" for status, count in check["statuses"].items()
                                 if count and status != Status.PASS.value) or "—"
            rows.append(
                f"<tr><td><b>{esc(check['description'] or check['name'])}</b><br>"
                f"<code>{esc(check['name'])}</code></td>"
                f"<td class=\"num\">{fmt_number(check['max_score'])}</td>"
                f"<td><span class=\"bar\"><span style=\"width:{check['pass_rate']:.0%}\"></span></span>"
                f"{check['pass_rate']:.0%} ({check['passed']}/{check['n']})</td>"
                f"<td class=\"num\">{fmt_number(check['mean_score'])}</td><td>{statuses}</td></tr>"
            )
        parts.append(
            "<table><tr><th>check</th><th class=\"num\">points</th><th>passed</th>"
            "<th class=\"num\">mean points</th><th>did not pass</th></tr>" + "".join(rows) + "</table>"
        )
    else:
        parts.append("<p class=\"missing\">No checks to summarise.</p>")

    if summary["metrics"]:
        rows = "".join(
            f"<tr><td>{esc(name)}</td><td class=\"num\">{stats['n']}</td>"
            f"<td class=\"num\">{fmt_number(stats['mean'])}</td>"
            f"<td class=\"num\">{fmt_number(stats['median'])}</td>"
            f"<td class=\"num\">{fmt_number(stats['min'])}</td>"
            f"<td class=\"num\">{fmt_number(stats['max'])}</td></tr>"
            for name, stats in summary["metrics"].items()
        )
        parts.append(
            "<h2>Measurements</h2><table><tr><th>measurement</th><th class=\"num\">n</th>"
            "<th class=\"num\">mean</th><th class=\"num\">median</th><th class=\"num\">lowest</th>"
            f"<th class=\"num\">highest</th></tr>{rows}</table>"
        )

    if summary["students"]:
        rows = "".join(
            f"<tr><td>{esc(s['student'])}</td><td class=\"num\">{fmt_number(s['score'])} / "
            f"{fmt_number(s['max_score'])}</td></tr>" for s in summary["students"]
        )
        parts.append("<h2>Students</h2><table><tr><th>student</th><th class=\"num\">score</th></tr>"
                     f"{rows}</table>")
    return page(f"Class summary: {name}", "\n".join(parts))


def write_class_summary(out_dir: Path | str, results: Sequence[GradingResult]) -> dict:
    """Write ``class_summary.json``, ``score_histogram.png`` and
    ``class_summary.html`` (which embeds the histogram) into ``out_dir``,
    each atomically; returns the summary (:func:`summarize`)."""
    out_dir = Path(out_dir)
    results = list(results)
    summary = summarize(results)
    histogram = _histogram_png(summary, [r.score for r in results])
    write_atomic(out_dir / HISTOGRAM_PNG, histogram)
    write_atomic(out_dir / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    write_atomic(out_dir / SUMMARY_HTML, _html(summary, histogram))
    return summary
