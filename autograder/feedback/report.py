"""The feedback report of one graded submission: a self-contained HTML page.

It shows the score, every check with its status, points and teaching message,
the notes, the measurements the suite made, the learning curves from the
training history, and what the model predicted on held-out data: a confusion
matrix for a classifier, predictions against the truth for a regression.

Inputs and how far they are trusted:

- the :class:`~autograder.results.GradingResult`: messages and notes may quote
  student-controlled text, so every string is escaped;
- ``feedback_dir/metrics.json``, ``classification.npz`` and
  ``regression_<label>.npz``: written by the hidden suite in the trusted
  process, read anyway as plain files of bounded size without pickle;
- ``feedback_dir/<name>.history.json``: exported by the student's kernel and
  only copied by the engine, so it is validated strictly (a dict of metric
  names to lists of numbers, bounded in size) and skipped, with a note, when
  it is anything else.

Nothing of the hidden suite is shown beyond what the results already hold
(each check's name, its one-line description and its message).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from autograder.artifacts import UnusableFile, read_history, read_plain_file
from autograder.atomic import write_atomic
from autograder.feedback._page import esc, figure_html, fmt_number, new_figure, page, png_bytes
from autograder.results import GradingResult, Status

MAX_HISTORIES = 4
"""At most this many histories are drawn, when the assignment does not name them."""
MAX_NPZ_BYTES = 64 * 2**20
"""Bound on a measurement file, on disk and uncompressed."""
MAX_POINTS = 1_000_000
MAX_CLASSES = 50
MAX_REGRESSIONS = 6
MAX_CLASS_NAME = 40

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
HISTORY_FILE = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,63})\.history\.json\Z")
REGRESSION_FILE = re.compile(r"regression_([A-Za-z0-9_\-]{1,64})\.npz\Z")
METRICS_FILE = "metrics.json"
CLASSIFICATION_FILE = "classification.npz"

STATUS_LABELS = {
    Status.PASS: "passed",
    Status.FAIL: "not passed",
    Status.ERROR: "could not be checked",
    Status.NOT_ATTEMPTED: "not attempted",
}


# ------------------------------------------------------------------ reading


def _load_npz(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Named arrays of an ``.npz`` file, bounded in size, without pickle."""
    raw = read_plain_file(path, MAX_NPZ_BYTES)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_NPZ_BYTES:
                raise UnusableFile("it is too large")
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            return {name: np.asarray(npz[name]) for name in names}
    except UnusableFile:
        raise
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise UnusableFile("it is not a readable set of arrays") from None


def _vector(arrays: dict, name: str, kind: str) -> np.ndarray:
    array = arrays[name]
    if array.ndim != 1 or not 0 < array.size <= MAX_POINTS or array.dtype.kind not in kind:
        raise UnusableFile(f"`{name}` is not a list of at most {MAX_POINTS:,} numbers")
    return array


def _metrics(result: GradingResult, feedback_dir: Path | None) -> dict[str, float]:
    """The result's metrics (or, without them, ``metrics.json``): finite numbers only."""
    metrics = result.metrics
    if not metrics and feedback_dir is not None:
        try:
            metrics = json.loads(read_plain_file(feedback_dir / METRICS_FILE, 2**20))
        except (UnusableFile, ValueError, UnicodeDecodeError, RecursionError):
            metrics = {}
    if not isinstance(metrics, dict):
        return {}
    return {
        str(k): float(v) for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def _declared_histories(assignment: str) -> list[str] | None:
    """The history variables the assignment exports, or ``None`` when unknown."""
    try:
        import tomllib

        from autograder.course import SUITES_DIR, known_assignments

        if assignment not in known_assignments():
            return None
        config = tomllib.loads((SUITES_DIR / assignment / "assignment.toml").read_text())
        return [name for name, kind in config.get("artifacts", {}).items()
                if kind == "history" and VARIABLE_NAME.match(name)]
    except Exception:  # no checkout of the suites, or a broken config: draw what is there
        return None


# ------------------------------------------------------------------ sections


def _points(score: float, max_score: float) -> str:
    return f"{fmt_number(score)} / {fmt_number(max_score)} point{'s' if max_score != 1 else ''}"


def _status_label(check) -> str:
    if check.status is Status.FAIL and 0 < check.score < check.max_score:
        return "partial credit"
    return STATUS_LABELS.get(check.status, str(check.status))


def _checks_section(result: GradingResult) -> str:
    if not result.tests:
        return "<h2>Checks</h2>\n<p class=\"missing\">No checks were run on this submission.</p>"
    parts = ["<h2>Checks</h2>"]
    for check in result.tests:
        status = check.status.value if isinstance(check.status, Status) else str(check.status)
        title = check.description or check.name
        message = f"<p class=\"message\">{esc(check.output)}</p>" if check.output else ""
        parts.append(
            f"<div class=\"check {esc(status)}\">"
            f"<div class=\"head\"><span class=\"badge\">{esc(_status_label(check))}</span>"
            f"<span class=\"what\">{esc(title)}</span>"
            f"<span class=\"points\">{_points(check.score, check.max_score)}</span></div>"
            f"<p class=\"name\">check <code>{esc(check.name)}</code></p>{message}</div>"
        )
    return "\n".join(parts)


def _notes_section(result: GradingResult) -> str:
    if not result.notes:
        return ""
    items = "".join(f"<li>{esc(note)}</li>" for note in result.notes)
    return f"<h2>Notes</h2>\n<ul class=\"notes\">{items}</ul>"


def _metric_label(name: str) -> str:
    words = [{"mae": "MAE", "mse": "MSE", "rmse": "RMSE"}.get(w, w) for w in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _metric_value(name: str, value: float) -> str:
    if name.endswith("accuracy") and 0 <= value <= 1:
        return f"{value:.2%}"
    return fmt_number(value)


def _metrics_section(metrics: dict[str, float]) -> str:
    if not metrics:
        return ""
    rows = "".join(
        f"<tr><td>{esc(_metric_label(name))}</td><td class=\"num\">{esc(_metric_value(name, v))}</td></tr>"
        for name, v in metrics.items()
    )
    return ("<h2>What the grader measured</h2>\n"
            f"<table><tr><th>measurement</th><th class=\"num\">value</th></tr>{rows}</table>")


def _finite_prefix(values: list[float]) -> tuple[list[float], int | None]:
    """The values before the first NaN or infinity, and that epoch's index (or None)."""
    for i, v in enumerate(values):
        if not math.isfinite(v):
            return values[:i], i
    return values, None


def _is_accuracy(key: str) -> bool:
    base = key[4:] if key.startswith("val_") else key
    return base == "acc" or base.endswith("accuracy")


def _panels(history: dict[str, list[float]]) -> list[tuple[str, list[str]]]:
    panels = []
    loss = [k for k in ("loss", "val_loss") if k in history]
    if loss:
        panels.append(("loss", loss))
    accuracy = sorted((k for k in history if _is_accuracy(k)),
                      key=lambda k: (k.removeprefix("val_"), k.startswith("val_")))[:4]
    if accuracy:
        panels.append(("accuracy", accuracy))
    if not panels:
        panels.append(("recorded metrics", sorted(history)[:6]))
    return panels


def _history_comments(history: dict[str, list[float]]) -> list[str]:
    """What a student should read off the curves, as plain sentences."""
    comments = []
    for key, values in history.items():
        _, bad = _finite_prefix(values)
        if bad is not None:
            what = "NaN" if math.isnan(values[bad]) else "infinite"
            comments.append(
                f"`{key}` became {what} at epoch {bad + 1}: training diverged there. Lower the "
                "learning rate, and check that the inputs are scaled."
            )
    loss, _ = _finite_prefix(history.get("loss", []))
    val, _ = _finite_prefix(history.get("val_loss", []))
    if len(history.get("loss", [])) == 1:
        comments.append("Only one epoch was recorded, so there is no curve to read: train for "
                        "several epochs and watch the loss go down.")
    elif len(loss) >= 2 and loss[-1] >= loss[0]:
        comments.append(
            f"The training loss did not go down (from {fmt_number(loss[0])} to "
            f"{fmt_number(loss[-1])}). Check the learning rate, and that the labels suit the loss."
        )
    if len(val) >= 3:
        best = int(np.argmin(val))
        last = len(val) - 1
        if (best <= last - 2 and val[-1] > val[best] * 1.05
                and len(loss) == len(val) and loss[-1] < loss[best]):
            comments.append(
                f"Validation loss was lowest at epoch {best + 1} ({fmt_number(val[best])}) and rose "
                f"to {fmt_number(val[-1])} by epoch {last + 1} while the training loss kept falling: "
                "the model began to overfit. Fewer epochs, or "
                "keras.callbacks.EarlyStopping(restore_best_weights=True), keep the better model."
            )
    return comments


def _history_figure(name: str, history: dict[str, list[float]]) -> str:
    from matplotlib.ticker import MaxNLocator

    panels = _panels(history)
    figure = new_figure(4.6 * len(panels), 3.4)
    for ax, (title, keys) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        drawn = 0
        for key in keys:
            values, _ = _finite_prefix(history[key])
            if values:
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, marker="o" if len(values) <= 40 else None,
                        markersize=3, label=key)
                drawn += 1
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    finals = ", ".join(
        f"{key} {fmt_number(history[key][-1])}" for _, keys in panels for key in keys
        if math.isfinite(history[key][-1])
    )
    caption = f"Learning curves of <code>{esc(name)}</code>"
    caption += f"; last epoch: {esc(finals)}." if finals else "."
    comments = "".join(f"<br>{esc(c)}" for c in _history_comments(history))
    return figure_html(png_bytes(figure), f"learning curves of {name}", caption + comments)


def _drawn(draw, *args) -> str:
    """``draw(*args)``; a figure Matplotlib cannot draw (values so extreme that
    no axis holds them) becomes :class:`UnusableFile` instead of a failed report."""
    try:
        return draw(*args)
    except UnusableFile:
        raise
    except Exception as exc:
        raise UnusableFile(f"its values are too extreme to plot ({type(exc).__name__})") from None


def _training_section(result: GradingResult, feedback_dir: Path | None) -> str:
    parts = ["<h2>Training</h2>"]
    if feedback_dir is None or not feedback_dir.is_dir():
        parts.append("<p class=\"missing\">No learning curves: no training history is available "
                     "for this submission.</p>")
        return "\n".join(parts)
    declared = _declared_histories(result.assignment)
    if declared is None:
        names = sorted(m.group(1) for p in feedback_dir.iterdir()
                       if (m := HISTORY_FILE.match(p.name)))[:MAX_HISTORIES]
    else:
        names = declared
    if declared == []:
        parts.append("<p class=\"missing\">No learning curves: this assignment does not collect "
                     "a training history.</p>")
    elif not names:
        parts.append("<p class=\"missing\">No learning curves: no training history is available "
                     "for this submission.</p>")
    for name in names:
        path = feedback_dir / f"{name}.history.json"
        if not os.path.lexists(path):
            parts.append(
                f"<p class=\"missing\">No learning curves: your notebook did not keep "
                f"<code>{esc(name)}</code> as the History that <code>model.fit()</code> returns "
                f"(<code>{esc(name)} = model.fit(...)</code>).</p>"
            )
            continue
        try:
            parts.append(_drawn(_history_figure, name, read_history(path)))
        except UnusableFile as exc:
            parts.append(f"<p class=\"missing\">The training history <code>{esc(name)}</code> "
                         f"was not drawn: {esc(exc)}.</p>")
    return "\n".join(parts)


def _classification_html(path: Path) -> str:
    arrays = _load_npz(path, ("y_true", "y_pred", "class_names"))
    y_true = _vector(arrays, "y_true", "iu").astype(np.int64)
    y_pred = _vector(arrays, "y_pred", "iu").astype(np.int64)
    if y_true.shape != y_pred.shape:
        raise UnusableFile("the labels and the predictions differ in number")
    names = [str(n)[:MAX_CLASS_NAME] for n in arrays["class_names"].ravel()[:MAX_CLASSES + 1]]
    n_classes = len(names) or int(max(y_true.max(), 0)) + 1  # unnamed: the labels seen
    if n_classes > MAX_CLASSES:
        raise UnusableFile(f"there are more than {MAX_CLASSES} classes to draw")
    names = names or [str(i) for i in range(n_classes)]
    keep = (y_true >= 0) & (y_true < n_classes)
    y_true, y_pred = y_true[keep], y_pred[keep]
    if not y_true.size:
        raise UnusableFile("no example has a known class")
    off_scale = (y_pred < 0) | (y_pred >= n_classes)
    columns = n_classes + int(off_scale.any())
    counts = np.zeros((n_classes, columns), dtype=np.int64)
    np.add.at(counts, (y_true, np.where(off_scale, n_classes, y_pred)), 1)
    total = int(counts.sum())
    correct = int(np.trace(counts[:, :n_classes]))
    per_class = counts.sum(axis=1)
    fractions = counts / np.maximum(per_class, 1)[:, None]
    column_names = names + (["other"] if columns > n_classes else [])

    figure = new_figure(max(4.2, 0.55 * columns + 2.4), max(3.6, 0.5 * n_classes + 1.8))
    ax = figure.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    if n_classes <= 20:
        for i in range(n_classes):
            for j in range(columns):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if fractions[i, j] > 0.5 else "black")
    ax.set_xticks(range(columns), column_names, rotation=45, ha="right")
    ax.set_yticks(range(n_classes), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{total:,} examples, {correct / total:.1%} right")
    figure.colorbar(image, ax=ax, label="share of the true class")

    recall = np.diag(counts[:, :n_classes]) / np.maximum(per_class, 1)
    mistakes = counts.copy()
    mistakes[np.arange(n_classes), np.arange(n_classes)] = 0
    rows = []
    for i in range(n_classes):
        if not per_class[i]:
            continue
        j = int(np.argmax(mistakes[i]))
        confused = (f"{esc(column_names[j])} ({mistakes[i, j]:,})" if mistakes[i, j] else "—")
        rows.append(f"<tr><td>{esc(names[i])}</td><td class=\"num\">{per_class[i]:,}</td>"
                    f"<td class=\"num\">{recall[i]:.1%}</td><td>{confused}</td></tr>")
    caption = ("Each row is a true class; the numbers count what your model predicted for its "
               "examples, so everything off the diagonal is a mistake.")
    if columns > n_classes:
        caption += " <em>other</em> counts predictions that are no class at all (off the scale, or not a number)."
    present = np.flatnonzero(per_class)
    weakest = int(present[np.argmin(recall[present])])
    if recall[weakest] < 1 and mistakes[weakest].any():
        j = int(np.argmax(mistakes[weakest]))
        caption += (f" Your model is weakest on <b>{esc(names[weakest])}</b> "
                    f"({recall[weakest]:.1%} right), most often mistaken for "
                    f"<b>{esc(column_names[j])}</b>.")
    table = ("<table><tr><th>true class</th><th class=\"num\">examples</th>"
             "<th class=\"num\">right</th><th>most often predicted instead</th></tr>"
             + "".join(rows) + "</table>")
    return ("<h3>Confusion matrix</h3>\n"
            + figure_html(png_bytes(figure), "confusion matrix", caption) + "\n" + table)


def _regression_html(path: Path, label: str) -> str:
    arrays = _load_npz(path, ("y_true", "y_pred"))
    y_true = _vector(arrays, "y_true", "iuf").astype(np.float64)
    y_pred = _vector(arrays, "y_pred", "iuf").astype(np.float64)
    if y_true.shape != y_pred.shape:
        raise UnusableFile("the targets and the predictions differ in number")
    finite = np.isfinite(y_true) & np.isfinite(y_pred)
    figure = new_figure(4.6, 4.2)
    ax = figure.subplots()
    caption = f"Predictions of <code>{esc(label)}</code> against the true values"
    if finite.any():
        t, p = y_true[finite], y_pred[finite]
        many = t.size > 2000
        ax.scatter(t, p, s=6 if many else 14, alpha=0.3 if many else 0.6, edgecolors="none")
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], color="#c23030", linewidth=1, label="exact")
        ax.legend(loc="upper left")
        caption += (f": {t.size:,} points, mean absolute error {fmt_number(np.mean(np.abs(p - t)))}. "
                    "Points on the red line are exact; above it the prediction is too high, below "
                    "it too low.")
    else:
        ax.text(0.5, 0.5, "no finite predictions", ha="center", va="center", transform=ax.transAxes)
        caption += "."
    if not finite.all():
        caption += (f" {int((~finite).sum()):,} predictions are NaN or infinite and are not drawn: "
                    "training diverged.")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(f"{label}: predicted against true")
    ax.grid(alpha=0.3)
    return figure_html(png_bytes(figure), f"predictions of {label} against the truth", caption)


def _predictions_section(feedback_dir: Path | None) -> str:
    parts = ["<h2>Predictions on the grader's data</h2>"]
    if feedback_dir is None or not feedback_dir.is_dir():
        parts.append("<p class=\"missing\">No predictions were measured for this submission, "
                     "so there is no confusion matrix and no plot of predictions.</p>")
        return "\n".join(parts)
    found = False
    classification = feedback_dir / CLASSIFICATION_FILE
    if os.path.lexists(classification):
        found = True
        try:
            parts.append(_drawn(_classification_html, classification))
        except UnusableFile as exc:
            parts.append(f"<p class=\"missing\">The confusion matrix could not be drawn: {esc(exc)}.</p>")
    regressions = sorted((m.group(1), p) for p in feedback_dir.iterdir()
                         if (m := REGRESSION_FILE.match(p.name)))[:MAX_REGRESSIONS]
    if regressions:
        found = True
        parts.append("<h3>Predicted against true values</h3>")
    for label, path in regressions:
        try:
            parts.append(_drawn(_regression_html, path, label))
        except UnusableFile as exc:
            parts.append(f"<p class=\"missing\">The plot for <code>{esc(label)}</code> could not be "
                         f"drawn: {esc(exc)}.</p>")
    if not found:
        parts.append("<p class=\"missing\">No predictions were measured: the checks that run your "
                     "model on the grader's data did not get that far (see the checks above).</p>")
    return "\n".join(parts)


# ------------------------------------------------------------------ the page


def render_report(result: GradingResult, feedback_dir: Path | str | None = None) -> str:
    """The student's feedback page for ``result`` as one self-contained HTML string.

    ``feedback_dir`` is the folder ``grade_submission(..., feedback_dir=...)``
    filled; without it (or when it is missing or partly empty) the page says
    what is not available. Pure apart from reading ``feedback_dir``.
    """
    feedback_dir = Path(feedback_dir) if feedback_dir is not None else None
    who = result.student or Path(result.submission).name
    score, max_score = result.score, result.max_score
    share = f" ({score / max_score:.0%})" if max_score else ""
    header = (
        f"<header><h1>{esc(result.assignment)}</h1>"
        f"<p class=\"meta\">Feedback for <b>{esc(who)}</b>"
        + (f" · graded in {result.execution_time:.0f} s" if result.execution_time else "")
        + (f" · Keras backend {esc(result.backend)} on {esc(result.device)}" if result.device else "")
        + f"</p><p class=\"score\">Score: {fmt_number(score)} / {fmt_number(max_score)}{share}</p>"
        "</header>"
    )
    body = "\n".join(part for part in (
        header,
        _checks_section(result),
        _notes_section(result),
        _metrics_section(_metrics(result, feedback_dir)),
        _training_section(result, feedback_dir),
        _predictions_section(feedback_dir),
    ) if part)
    return page(f"{result.assignment}: feedback for {who}", body)


def write_report(path: Path | str, result: GradingResult,
                 feedback_dir: Path | str | None = None) -> Path:
    """Render the report of ``result`` and write it to ``path`` atomically."""
    write_atomic(path, render_report(result, feedback_dir))
    return Path(path)
