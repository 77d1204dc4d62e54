"""Feedback reports and the class summary.

Two linear_grading notebooks are graded once through the real engine with a
feedback folder: the reference solution, and a hostile submission whose error
message carries HTML and whose exported history is a link to the hidden suite.
Everything else (malformed histories, missing feedback, the class summary)
is built in code.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from autograder.course import SUITES_DIR, load_assignment
from autograder.engine.grade import grade_submission
from autograder.feedback import render_report, summarize, write_class_summary, write_report
from autograder.artifacts import MAX_EPOCHS, MAX_HISTORY_BYTES, UnusableFile, read_history
from autograder.results import CheckResult, GradingResult, Status
from conftest import LINEAR_HAND_SET_WEIGHTS, LINEAR_MODEL, REPO, by_name, make_submission

A = "linear_grading"
SUITE_FILE = SUITES_DIR / A / f"test_{A}.py"
SCRIPT = "<script>alert('x_mean')</script>"
HOSTILE = {
    # A plausible answer whose object cannot be exported, with an error message
    # of the student's making: it reaches the report through the export log.
    "summary": (
        "class Unsaveable:\n"
        "    def __array__(self, *args, **kwargs):\n"
        f"        raise ValueError({SCRIPT!r})\n"
        "x_mean = Unsaveable()\nx_min = x.min(axis=0)\nx_max = x.max(axis=0)"
    ),
    "build_model": LINEAR_MODEL,
    # Hand-set weights (half the accuracy points, too high an MSE), then a
    # "history" that is a link to the hidden suite, left for the grader to copy.
    "train": (
        LINEAR_HAND_SET_WEIGHTS + "\n"
        "import os\nos.makedirs('artifacts', exist_ok=True)\n"
        f"os.symlink({str(SUITE_FILE)!r}, 'artifacts/history.history.json')\n"
        "del history"
    ),
}
CHECK_DESCRIPTIONS = [
    "x_mean, x_min and x_max hold each part's statistics.",
    "The model is one Dense layer with one unit and a linear activation.",
    "Rounded predictions match the true grades often enough.",
]


def images(page: str) -> list[bytes]:
    """The PNG images embedded in a page, decoded."""
    return [base64.b64decode(data)
            for data in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def alts(page: str) -> list[str]:
    return re.findall(r'<img [^>]*alt="([^"]*)"', page)


def suite_lines_in(page: str) -> list[str]:
    """Lines of the hidden suite (8 characters or more) that appear in the page,
    as HTML or as the text a browser shows."""
    text = html.unescape(page)
    lines = {line.strip() for line in SUITE_FILE.read_text().splitlines() if len(line.strip()) >= 8}
    return sorted(line for line in lines if line in page or line in text)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """``{"reference" | "hostile": (result, feedback_dir, html)}``, each graded once."""
    assignment = load_assignment(A)
    out = {}
    for name, notebook in (
        ("reference", REPO / "solutions" / A / f"{A}.ipynb"),
        ("hostile", make_submission(tmp_path_factory.mktemp("hostile") / f"{A}.ipynb", A, HOSTILE)),
    ):
        feedback_dir = tmp_path_factory.mktemp(f"{name}_feedback") / "feedback"
        result = grade_submission(notebook, assignment, feedback_dir=feedback_dir)
        result.student = name
        out[name] = (result, feedback_dir, render_report(result, feedback_dir))
    return out


@pytest.fixture
def reference_feedback(graded, tmp_path) -> Path:
    """A private copy of the reference's feedback folder, to spoil."""
    return Path(shutil.copytree(graded["reference"][1], tmp_path / "feedback"))


# ------------------------------------------------------------ suite measurements


def test_the_suite_keeps_its_measurements_in_the_feedback_folder(graded):
    result, feedback_dir, _ = graded["reference"]
    assert result.score == result.max_score == 10
    assert {p.name for p in feedback_dir.iterdir()} == {
        "metrics.json", "classification.npz", "regression_grade.npz", "history.history.json"}
    assert set(result.metrics) == {"training_mse", "rounded_grade_accuracy"}
    assert json.loads((feedback_dir / "metrics.json").read_text()) == result.metrics

    with np.load(feedback_dir / "classification.npz") as c:
        assert list(c["class_names"]) == ["0", "1", "2", "3", "4", "5"]
        assert c["y_true"].shape == c["y_pred"].shape == (2000,)
        # The confusion matrix and the headline number tell the same story.
        assert np.mean(c["y_true"] == c["y_pred"]) == pytest.approx(result.metrics["rounded_grade_accuracy"])
    with np.load(feedback_dir / "regression_grade.npz") as r:
        mse = np.mean((r["y_pred"] - r["y_true"]) ** 2)
        assert mse == pytest.approx(result.metrics["training_mse"], rel=1e-5)


# ------------------------------------------------------------ the student's report


def test_reference_report_shows_score_checks_measurements_and_three_figures(graded):
    result, _, page = graded["reference"]
    assert "<h1>linear_grading</h1>" in page
    assert "Feedback for <b>reference</b>" in page
    assert "Score: 10 / 10 (100%)" in page
    for description in CHECK_DESCRIPTIONS:
        assert html.escape(description) in page
    assert page.count('<span class="badge">passed</span>') == 6
    assert "3 / 3 points" in page
    assert f"{result.metrics['rounded_grade_accuracy']:.2%}" in page
    assert alts(page) == ["learning curves of history", "confusion matrix",
                          "predictions of grade against the truth"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images(page))
    assert "<th>true class</th>" in page  # the per-class table under the confusion matrix


def test_report_is_self_contained(graded):
    for _, _, page in graded.values():
        assert page.startswith("<!DOCTYPE html>")
        sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
        assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
        assert "http://" not in page and "https://" not in page
        assert "<script" not in page.lower() and "<link" not in page.lower()


def test_no_line_of_the_hidden_suite_appears_in_a_report(graded):
    for _, _, page in graded.values():
        assert suite_lines_in(page) == []


def test_student_text_in_a_message_is_escaped(graded):
    result, _, page = graded["hostile"]
    summary = by_name(result)["test_data_summary"]
    assert summary.status is Status.NOT_ATTEMPTED
    assert SCRIPT in summary.output  # the engine carried the student's text this far
    assert html.escape(SCRIPT) in page
    assert "<script" not in page.lower()


def test_partial_credit_and_failures_are_labelled_with_their_points(graded):
    _, _, page = graded["hostile"]
    assert "partial credit</span><span class=\"what\">Rounded predictions" in page
    assert "1.5 / 3 points" in page
    assert "not passed</span><span class=\"what\">The trained model&#x27;s mean squared" in page
    assert "not attempted</span><span class=\"what\">x_mean, x_min and x_max" in page


def test_a_history_that_links_elsewhere_is_not_drawn(graded):
    _, _, page = graded["hostile"]
    assert alts(page) == ["confusion matrix", "predictions of grade against the truth"]
    assert ("The training history <code>history</code> was not drawn" in page
            or "your notebook did not keep <code>history</code>" in page)


def test_the_feedback_folder_never_holds_what_a_kernel_link_points_to(graded):
    kept = graded["hostile"][1] / "history.history.json"
    assert not kept.exists() or kept.read_bytes() != SUITE_FILE.read_bytes()


def test_a_note_with_markup_is_escaped():
    result = GradingResult(A, "sub/linear_grading.ipynb", student="<b>mallory</b>",
                           notes=["Cell 3 printed <script>steal()</script> & more"])
    result.tests = [CheckResult("test_x", 0, 1, Status.FAIL, output='<img src=x onerror="y">',
                                description="Desc <i>")]
    page = render_report(result, None)
    assert "&lt;script&gt;steal()&lt;/script&gt; &amp; more" in page
    assert "&lt;img src=x onerror=&quot;y&quot;&gt;" in page
    assert "&lt;b&gt;mallory&lt;/b&gt;" in page and "Desc &lt;i&gt;" in page
    assert "<script" not in page and "<img src=x" not in page and "<b>mallory" not in page


@pytest.mark.parametrize("feedback", ["none", "empty", "missing"])
def test_report_renders_without_any_feedback(tmp_path, feedback):
    """What a blank release gets: every check not attempted, nothing measured."""
    result = GradingResult(A, "blank.ipynb", tests=[
        CheckResult("test_model_is_linear", 0, 2, Status.NOT_ATTEMPTED,
                    "Your notebook does not define `model`, so this part was not graded.",
                    "The model is one Dense layer with one unit and a linear activation."),
    ])
    folder = {"none": None, "empty": tmp_path, "missing": tmp_path / "nowhere"}[feedback]
    page = render_report(result, folder)
    assert "Score: 0 / 2 (0%)" in page
    assert "does not define `model`" in page
    assert images(page) == []
    assert "No learning curves" in page
    assert "No predictions were measured" in page


# ------------------------------------------------------------ histories from the kernel


@pytest.mark.parametrize("content, why", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2, 3]", "not a set of metric names"),
    (b"{}", "not a set of metric names"),
    (b'{"loss": "0.5"}', "`loss` is not a list"),
    (b'{"loss": []}', "`loss` is not a list"),
    (b'{"loss": [0.5, "0.4"]}', "`loss` holds something other than numbers"),
    (b'{"loss": [true, false]}', "`loss` holds something other than numbers"),
    (b'{"loss": [[0.5], [0.4]]}', "`loss` holds something other than numbers"),
    (b'{"loss": [1' + b"0" * 400 + b"]}", "too large"),
    (b'{"<img src=x>": [0.5]}', "not a plain name"),
    (json.dumps({"loss": [0.1] * (MAX_EPOCHS + 1)}).encode(), "more than 10,000 epochs"),
    (json.dumps({f"m{i}": [0.1] for i in range(65)}).encode(), "more than 64 metrics"),
    (b"\xff\xfe" + b"{}", "not valid JSON"),
])
def test_malformed_histories_are_refused_with_a_reason(tmp_path, content, why):
    path = tmp_path / "history.history.json"
    path.write_bytes(content)
    with pytest.raises(UnusableFile, match=re.escape(why)):
        read_history(path)


def test_a_history_too_large_a_link_or_a_pipe_is_not_read(tmp_path):
    big = tmp_path / "big.history.json"
    big.write_bytes(b'{"loss": [' + b"0.1, " * (MAX_HISTORY_BYTES // 5) + b"0.1]}")
    with pytest.raises(UnusableFile, match="larger than 4 MiB"):
        read_history(big)
    target = tmp_path / "real.json"
    target.write_text('{"loss": [1.0, 0.5]}')
    (tmp_path / "link.history.json").symlink_to(target)
    with pytest.raises(UnusableFile, match="could not be opened as a plain file"):
        read_history(tmp_path / "link.history.json")
    os.mkfifo(tmp_path / "pipe.history.json")
    with pytest.raises(UnusableFile, match="not a plain file"):
        read_history(tmp_path / "pipe.history.json")  # and does not wait for a writer
    assert read_history(target) == {"loss": [1.0, 0.5]}


def test_a_malformed_history_is_skipped_and_the_rest_still_drawn(graded, reference_feedback):
    result = graded["reference"][0]
    (reference_feedback / "history.history.json").write_text('{"loss": "<b>lots</b>"}')
    page = render_report(result, reference_feedback)
    assert "The training history <code>history</code> was not drawn: `loss` is not a list" in page
    assert "<b>lots" not in page and "&lt;b&gt;lots" not in page  # the content is not quoted
    assert alts(page) == ["confusion matrix", "predictions of grade against the truth"]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_history_too_extreme_to_plot_is_skipped_not_fatal(graded, reference_feedback):
    result = graded["reference"][0]
    (reference_feedback / "history.history.json").write_text('{"loss": [1e308, -1e308]}')
    page = render_report(result, reference_feedback)
    assert "<code>history</code> was not drawn: its values are too extreme to plot" in page
    assert alts(page) == ["confusion matrix", "predictions of grade against the truth"]


def test_a_diverged_history_is_drawn_up_to_the_first_nan(graded, reference_feedback):
    result = graded["reference"][0]
    (reference_feedback / "history.history.json").write_text(
        '{"loss": [2.0, 1.0, NaN, NaN], "val_loss": [2.1, 1.2, Infinity, NaN]}')
    page = render_report(result, reference_feedback)
    assert alts(page)[0] == "learning curves of history"
    assert "`loss` became NaN at epoch 3: training diverged there" in page
    assert "`val_loss` became infinite at epoch 3" in page


def test_learning_curves_point_out_overfitting_and_draw_accuracy(graded, reference_feedback):
    result = graded["reference"][0]
    history = {"loss": [1.0, 0.6, 0.4, 0.3, 0.2, 0.1], "val_loss": [1.1, 0.7, 0.5, 0.6, 0.7, 0.8],
               "accuracy": [0.5, 0.7, 0.8, 0.85, 0.9, 0.95],
               "val_accuracy": [0.5, 0.65, 0.75, 0.74, 0.73, 0.72]}
    (reference_feedback / "history.history.json").write_text(json.dumps(history))
    page = render_report(result, reference_feedback)
    assert "Validation loss was lowest at epoch 3 (0.5) and rose to 0.8 by epoch 6" in page
    assert "last epoch: loss 0.1, val_loss 0.8, accuracy 0.95, val_accuracy 0.72." in page
    width, _ = struct.unpack(">II", images(page)[0][16:24])
    assert width > 800  # two panels side by side: loss and accuracy


# ------------------------------------------------------------ other measurements


def test_classes_and_regressions_from_other_suites_are_drawn(tmp_path):
    names = ["aeroplane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "lorry"]
    y_true = np.repeat(np.arange(10), 10)
    y_pred = y_true.copy()
    y_pred[30:36] = 5  # six cats taken for dogs
    np.savez_compressed(tmp_path / "classification.npz", y_true=y_true, y_pred=y_pred,
                        class_names=np.asarray(names))
    truth = np.linspace(5, 50, 20)
    np.savez_compressed(tmp_path / "regression_mlp_model.npz", y_true=truth,
                        y_pred=np.r_[truth[:18] + 1, np.nan, np.inf])
    result = GradingResult("cifar10_cnn", "s.ipynb", metrics={"test_accuracy": 0.94})
    page = render_report(result, tmp_path)
    assert alts(page) == ["confusion matrix", "predictions of mlp_model against the truth"]
    assert "weakest on <b>cat</b> (40.0% right), most often mistaken for <b>dog</b>" in page
    assert "<td>cat</td><td class=\"num\">10</td><td class=\"num\">40.0%</td><td>dog (6)</td>" in page
    assert "18 points, mean absolute error 1." in page
    assert "2 predictions are NaN or infinite and are not drawn" in page
    assert "94.00%" in page


def test_write_report_replaces_the_file_whole(tmp_path):
    path = tmp_path / "alice" / "report.html"
    result = GradingResult(A, "alice.ipynb", student="alice")
    write_report(path, result, None)
    path.write_text("old")
    write_report(path, result, None)
    assert path.read_text() == render_report(result, None)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


# ------------------------------------------------------------ the class summary


def check(name, status, score, max_score, description=""):
    return CheckResult(name, score, max_score, status, "", description)


@pytest.fixture
def class_results():
    """Four students; `shapes` is missed most, then `accuracy`; `summary` always passes."""
    p, f, n, e = Status.PASS, Status.FAIL, Status.NOT_ATTEMPTED, Status.ERROR
    rows = {
        "ann": [(p, 1), (p, 3), (p, 2)],
        "bob": [(p, 1), (f, 1.5), (f, 0)],
        "cy": [(p, 1), (p, 3), (e, 0)],
        "<i>dee</i>": [(p, 1), (n, 0), (n, 0)],
    }
    described = [("test_summary", 1, "Data summary."), ("test_accuracy", 3, "Accuracy <high>."),
                 ("test_shapes", 2, "Shapes fit.")]
    results = []
    for i, (student, outcomes) in enumerate(rows.items()):
        tests = [check(name, status, score, points, desc)
                 for (name, points, desc), (status, score) in zip(described, outcomes)]
        results.append(GradingResult(A, f"{student}/nb.ipynb", tests=tests, student=student,
                                     metrics={"test_accuracy": 0.5 + i / 10}))
    return results


def test_class_summary_puts_the_most_missed_check_first(tmp_path, class_results):
    summary = write_class_summary(tmp_path, class_results)
    assert json.loads((tmp_path / "class_summary.json").read_text()) == summary
    assert summary["assignment"] == A and summary["n_graded"] == 4 and summary["max_score"] == 6
    assert summary["score"] == {"n": 4, "mean": 3.375, "median": 3.25, "min": 1, "max": 6}
    checks = summary["checks"]
    assert [c["name"] for c in checks] == ["test_shapes", "test_accuracy", "test_summary"]
    shapes, accuracy, data = checks
    assert (shapes["passed"], shapes["n"], shapes["pass_rate"]) == (1, 4, 0.25)
    assert shapes["statuses"] == {"pass": 1, "fail": 1, "error": 1, "not-attempted": 1}
    assert shapes["description"] == "Shapes fit." and shapes["mean_score"] == 0.5
    assert (accuracy["passed"], accuracy["pass_rate"]) == (2, 0.5)
    assert accuracy["mean_score"] == 1.875 and accuracy["mean_fraction"] == 0.625
    assert (data["passed"], data["pass_rate"], data["mean_fraction"]) == (4, 1.0, 1.0)
    assert summary["metrics"]["test_accuracy"] == {"n": 4, "mean": 0.65, "median": 0.65,
                                                   "min": 0.5, "max": 0.8}
    assert [s["student"] for s in summary["students"]] == ["<i>dee</i>", "ann", "bob", "cy"]


def test_class_summary_page_embeds_the_histogram_and_escapes_names(tmp_path, class_results):
    write_class_summary(tmp_path, class_results)
    png = (tmp_path / "score_histogram.png").read_bytes()
    page = (tmp_path / "class_summary.html").read_text()
    assert png.startswith(b"\x89PNG") and images(page) == [png]
    assert page.index("Shapes fit.") < page.index("Accuracy &lt;high&gt;.") < page.index("Data summary.")
    assert "25% (1/4)" in page and "50% (2/4)" in page and "100% (4/4)" in page
    assert "&lt;i&gt;dee&lt;/i&gt;" in page and "<i>dee" not in page
    assert "https://" not in page and "http://" not in page and "<script" not in page
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "class_summary.html", "class_summary.json", "score_histogram.png"]


def test_class_summary_of_no_submissions(tmp_path):
    summary = write_class_summary(tmp_path, [])
    assert summary["n_graded"] == 0 and summary["checks"] == []
    assert summary["score"]["mean"] is None
    assert "No submissions were graded." in (tmp_path / "class_summary.html").read_text()
    assert (tmp_path / "score_histogram.png").read_bytes().startswith(b"\x89PNG")


def test_class_summary_of_graded_results(graded):
    results = [graded["reference"][0], graded["hostile"][0]]
    summary = summarize(results)
    assert summary["n_graded"] == 2 and summary["max_score"] == 10
    assert summary["score"]["max"] == 10 and summary["score"]["min"] < 10
    first = summary["checks"][0]
    assert first["pass_rate"] == 0.5 and not math.isnan(first["mean_score"])
    assert first["name"] in {"test_data_summary", "test_training_loss", "test_rounded_grade_accuracy"}
    assert first["description"]
