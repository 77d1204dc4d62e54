"""``autograder similarity``: copied answers are surfaced, starter code and
honest work are not.

Submissions are linear_grading's real release with answers filled in
(``make_submission``); nothing is graded or run."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder.course import load_assignment
from autograder.results import GradingResult
from autograder.similarity import (
    CSV_COLUMNS,
    KGRAM,
    WINDOW,
    add_commands,
    answer_cells,
    build_report,
    compare,
    fingerprint_answers,
    kgrams,
    normalise,
    starter_code,
    starter_lines,
    to_csv,
    to_html,
    winnow,
)
from conftest import REPO, make_submission

A = "linear_grading"
RELEASE = load_assignment(A).release_notebook

# The reference answers, starter print lines kept as a student leaves them.
ORIGINAL = {
    "summary": "x_mean = x.mean(axis=0)\nx_min = x.min(axis=0)\nx_max = x.max(axis=0)\n"
               'print("mean:", x_mean)\nprint("min: ", x_min)\nprint("max: ", x_max)\n'
               'print("grades used:", np.unique(y))',
    "build_model": "keras.utils.set_random_seed(0)\nmodel = keras.Sequential([\n"
                   "    keras.Input(shape=(3,)),\n    keras.layers.Dense(1),\n])\nmodel.summary()",
    "train": 'model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.003), loss="mse")\n'
             "history = model.fit(x, y, epochs=60, batch_size=16, verbose=0)",
    "accuracy": "predictions = model.predict(x, verbose=0)\n"
                "accuracy = np.mean(np.round(predictions) == y)",
    "experiments": "for epochs, batch_size in [(20, 16), (60, 128)]:\n"
                   "    trial_model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])\n"
                   '    trial_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.003), loss="mse")\n'
                   "    trial_model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)\n"
                   "    trial_accuracy = np.mean(np.round(trial_model.predict(x, verbose=0)) == y)\n"
                   '    print(f"epochs={epochs:3d} batch_size={batch_size:3d}: accuracy {trial_accuracy:.3f}")',
    "weights": "kernel, bias = model.get_weights()\n"
               'for part, weight in zip(["exercises", "project", "exam"], kernel[:, 0]):\n'
               '    print(f"{part:10s} weight per point {weight:.3f}")\nprint(f"bias {bias[0]:.3f}")',
}
# The same code disguised: every variable renamed, comments added, spacing,
# line breaks, indentation, quotes, messages and hyperparameters changed.
DISGUISED = {
    "summary": "# column statistics\nx_mean=x.mean(axis = 0)   # averages\nx_min =x.min( axis=0 )\n\n"
               "x_max = x.max(axis=0)",
    "build_model": "keras.utils.set_random_seed(42)   # my seed\nmodel = keras.Sequential(\n"
                   "  [keras.Input(shape=(3,)),   keras.layers.Dense(1)]\n)",
    "train": "# train it\nmodel.compile(optimizer=keras.optimizers.SGD(learning_rate=0.005), loss='mse')\n"
             "history = model.fit(x, y, epochs=80, batch_size=32, verbose=0)",
    "accuracy": "preds = model.predict(x, verbose=0)\n\naccuracy = np.mean(np.round(preds) == y)  # fraction right",
    "experiments": "# try a few settings\nfor n_epochs, bs in [(10, 8), (50, 64)]:\n"
                   "  m = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])\n"
                   "  m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss='mse')\n"
                   "  m.fit(x, y, epochs=n_epochs, batch_size=bs, verbose=0)\n"
                   "  acc = np.mean(np.round(m.predict(x, verbose=0)) == y)\n"
                   "  print(f'{n_epochs} {bs}: {acc:.2f}')",
    "weights": "w, b = model.get_weights()\nfor name, value in zip(['exercises', 'project', 'exam'], w[:, 0]):\n"
               "    print(f'{name}: {value:.2f}')\nprint(f'bias: {b[0]:.2f}')",
}
# A correct answer written independently, in another common style.
INDEPENDENT = {
    "summary": "x_mean = np.mean(x, axis=0)\nx_min = np.min(x, axis=0)\nx_max = np.max(x, axis=0)",
    "build_model": "model = keras.Sequential()\nmodel.add(keras.layers.Input((3,)))\n"
                   "model.add(keras.layers.Dense(units=1, activation=None))",
    "train": "opt = keras.optimizers.Adam(0.05)\nmodel.compile(opt, loss=keras.losses.MeanSquaredError())\n"
             "history = model.fit(x, y, validation_split=0.0, epochs=100, verbose=False)",
    "accuracy": "rounded = model.predict(x).round().flatten()\n"
                "accuracy = (rounded == y.flatten()).sum() / len(y)",
    "experiments": "# I tried Adam with learning rates 0.01, 0.05, 0.1; 0.05 converged fastest.\n"
                   "results = {}\nfor lr in (0.01, 0.05, 0.1):\n"
                   "    candidate = keras.models.clone_model(model)\n"
                   "    candidate.compile(keras.optimizers.Adam(lr), 'mse')\n"
                   "    h = candidate.fit(x, y, epochs=30, verbose=False)\n"
                   "    results[lr] = h.history['loss'][-1]\nprint(results)",
    "weights": "print(model.layers[0].kernel.numpy().ravel(), model.layers[0].bias.numpy())",
}


def class_of(tmp_path: Path, answers_by_student: dict[str, dict[str, str]]) -> list[tuple[str, Path]]:
    """A flat folder of submissions, ``<student>.ipynb``, as (student, path)."""
    return [(student, make_submission(tmp_path / f"{student}.ipynb", A, answers))
            for student, answers in answers_by_student.items()]


def report_of(tmp_path, answers_by_student, **kw):
    return build_report(class_of(tmp_path, answers_by_student), RELEASE, assignment=A, **kw)


def pair(report, a, b):
    return compare(*(x for x in report.answers if x.student in (a, b)))


def run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="autograder")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["similarity", *argv])
    return args.run(args)


# --- what is flagged -------------------------------------------------------------------------

def test_a_renamed_recommented_respaced_copy_is_flagged_near_one(tmp_path):
    report = report_of(tmp_path, {"alice": ORIGINAL, "bob": DISGUISED})
    assert [(p.student_a, p.student_b) for p in report.flagged] == [("alice", "bob")]
    copy = report.flagged[0]
    assert copy.similarity >= 0.9
    # Every answer cell's own code is highlighted on both sides; starter lines are not.
    assert set(copy.lines_a) == set(copy.lines_b) == set(ORIGINAL)
    assert copy.lines_a["summary"] == [1, 2, 3]  # lines 4-7 are the release's print lines
    assert copy.lines_b["summary"] == [2, 3, 5]  # a comment and a blank line in between
    assert copy.matching_lines >= 18
    recorded = json.loads(json.dumps(report.to_dict()))
    assert recorded["flagged"][0]["similarity"] == round(copy.similarity, 4)
    assert [c["student"] for c in recorded["compared"]] == ["alice", "bob"]


def test_independently_written_correct_answers_score_clearly_lower(tmp_path):
    report = report_of(tmp_path, {"alice": ORIGINAL, "bob": DISGUISED, "carol": INDEPENDENT})
    copied = pair(report, "alice", "bob").similarity
    for other in ("alice", "bob"):
        honest = pair(report, other, "carol").similarity
        assert honest < 0.3 and copied - honest > 0.6, (other, honest)
    assert [(p.student_a, p.student_b) for p in report.flagged] == [("alice", "bob")]


def test_blank_releases_share_nothing_even_at_threshold_zero(tmp_path):
    report = report_of(tmp_path, {"dan": {}, "erin": {}, "alice": ORIGINAL}, threshold=0.0)
    blank = {a.student: a for a in report.answers}
    assert not blank["dan"].fingerprints and not blank["erin"].fingerprints
    assert pair(report, "dan", "erin").similarity == 0
    assert report.flagged == []


def test_starter_code_kept_by_two_students_is_not_what_makes_them_similar(tmp_path):
    # Both keep the release's print lines under different answers: the score
    # is the one their answers alone get.
    prints = "\n".join(ORIGINAL["summary"].splitlines()[3:])
    kept = report_of(tmp_path / "kept", {"alice": {"summary": ORIGINAL["summary"]},
                                         "carol": {"summary": INDEPENDENT["summary"] + "\n" + prints}})
    alone = report_of(tmp_path / "alone", {"alice": {"summary": "\n".join(ORIGINAL["summary"].splitlines()[:3])},
                                           "carol": {"summary": INDEPENDENT["summary"]}})
    alice = next(a for a in kept.answers if a.student == "alice")
    assert alice.starter_lines["summary"] == {4, 5, 6, 7}
    assert pair(kept, "alice", "carol").similarity == pair(alone, "alice", "carol").similarity
    assert starter_lines('print( "mean:",x_mean )\nx = 1', 'print("mean:", x_mean)') == {1}


def test_threshold_decides_what_is_flagged(tmp_path):
    answers = {"alice": ORIGINAL, "bob": DISGUISED, "carol": INDEPENDENT}
    everything = report_of(tmp_path, answers, threshold=0.01)
    assert len(everything.flagged) == 3 and everything.pairs_compared == 3
    assert report_of(tmp_path, answers, threshold=1.0).flagged == []


# --- the method --------------------------------------------------------------------------------

def test_normalising_ignores_names_comments_spacing_and_literals_but_keeps_attributes():
    def texts(source):
        return [t.text for t in normalise(source)]

    assert texts("x_mean = x.mean(axis=0)  # mean") == texts("m=data.mean( axis = 1 )")
    assert texts("x_mean = x.mean(axis=0)") != texts("x_mean = x.min(axis=0)")
    assert texts("print('a')") == texts('print(f"{b:.3f} done")') == ["V", "(", "S", ")"]
    assert "for" in texts("for i in range(3):\n    pass")


def test_a_cell_that_is_not_valid_python_still_counts_after_the_broken_line():
    source = ("if ready:\n        x = (1, 2)\n    !pip install keras\n"  # inconsistent dedent
              "history = model.fit(x, y, epochs=3)\ntext = \"\"\"never closed\nmodel.evaluate(x, y)")
    tokens = normalise(source)
    by_line = {t.line: [] for t in tokens}
    for t in tokens:
        by_line[t.line].append(t.text)
    assert "fit" in by_line[4] and "evaluate" in by_line[6]


def test_any_shared_run_of_window_plus_k_minus_one_tokens_shares_a_fingerprint():
    shared = "model.fit(x, y, epochs=60)"  # 14 tokens, more than WINDOW + KGRAM - 1
    assert len(normalise(shared)) >= WINDOW + KGRAM - 1

    def fingerprints(source):
        return {h for h, _ in winnow(kgrams(normalise(source)))}

    assert fingerprints(f"a = b + c\n{shared}\nfor q in r: pass") & fingerprints(f"while d: e.f()\n{shared}")


def test_winnowing_keeps_the_smallest_hash_of_each_window_rightmost_on_ties():
    grams = [(h, (i,)) for i, h in enumerate([5, 3, 7, 3, 9, 8, 1])]
    assert winnow(grams, 3) == [(3, (1,)), (3, (3,)), (1, (6,))]
    assert winnow(grams[:2], 3) == [(3, (1,))]
    assert winnow([], 3) == []
    assert winnow([(4, (0,)), (1, (1,)), (1, (2,)), (6, (3,))], 3) == [(1, (2,))]


def test_identical_answers_score_one_either_way_round_with_every_line_highlighted(tmp_path):
    # A short first line is in few k-grams, and winnowing keeps none of them here.
    cells = {"experiments": ORIGINAL["experiments"], "weights": 'html = "x"\n' + ORIGINAL["weights"]}
    a = fingerprint_answers("zoe", tmp_path / "z.ipynb", cells, {})
    b = fingerprint_answers("amy", tmp_path / "a.ipynb", cells, {})
    assert compare(a, b).similarity == compare(b, a).similarity == 1.0
    same = compare(a, b)
    assert (same.student_a, same.student_b) == ("amy", "zoe")
    every_line = {gid: list(range(1, len(source.splitlines()) + 1)) for gid, source in cells.items()}
    assert same.lines_a == same.lines_b == every_line


def test_the_first_copy_of_a_duplicated_answer_cell_is_the_answer_as_in_grading(tmp_path):
    def duplicate_summary(notebook):
        copy = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "summary")
        notebook.cells.append(nbformat.from_dict(dict(copy, id="summary-again", source=INDEPENDENT["summary"])))

    path = make_submission(tmp_path / "dup.ipynb", A, {"summary": ORIGINAL["summary"]}, edit=duplicate_summary)
    starter = starter_code(nbformat.read(RELEASE, as_version=4))
    cells = answer_cells(nbformat.read(path, as_version=4), starter)
    assert cells["summary"] == ORIGINAL["summary"]
    assert list(starter) == ["summary", "build_model", "train", "accuracy", "experiments", "weights"]


# --- what cannot be compared ------------------------------------------------------------------

def test_an_unreadable_or_foreign_notebook_is_skipped_with_its_reason(tmp_path):
    submissions = class_of(tmp_path, {"alice": ORIGINAL, "bob": DISGUISED})
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [', encoding="utf-8")
    no_ids = make_submission(tmp_path / "no_ids.ipynb", A, {}, edit=lambda nb: [
        c.metadata.pop("nbgrader", None) for c in nb.cells])
    foreign = REPO / "assignments" / "mnist_mlp" / "mnist_mlp.ipynb"
    report = build_report(submissions + [("broken", broken), ("no_ids", no_ids), ("foreign", foreign)],
                          RELEASE, assignment=A)
    reasons = {s.student: s.reason for s in report.skipped}
    assert "not valid notebook JSON" in reasons["broken"]
    assert "none of its cells carries the grade_id" in reasons["no_ids"]
    assert "it is the mnist_mlp notebook" in reasons["foreign"]
    assert [a.student for a in report.answers] == ["alice", "bob"]
    assert len(report.flagged) == 1
    assert report.to_dict()["skipped"][0] == {"student": "broken", "submission": str(broken),
                                               "reason": reasons["broken"]}


# --- outputs -------------------------------------------------------------------------------------

def test_csv_has_its_columns_and_lists_the_most_similar_pair_first(tmp_path):
    near_copy = dict(INDEPENDENT, summary=ORIGINAL["summary"], build_model=ORIGINAL["build_model"])
    report = report_of(tmp_path, {"zoe": ORIGINAL, "carol": INDEPENDENT, "amy": DISGUISED,
                                  "ben": near_copy}, threshold=0.2)
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert tuple(rows[0]) == CSV_COLUMNS == ("student_a", "student_b", "similarity", "matching_lines")
    body = rows[1:]
    assert (body[0][0], body[0][1]) == ("amy", "zoe")
    scores = [float(r[2]) for r in body]
    assert scores == sorted(scores, reverse=True) and all(s >= 0.2 for s in scores)
    assert len(body) == len(report.flagged) >= 2
    assert all(r[0] < r[1] and int(r[3]) > 0 for r in body)
    assert {("ben", "carol")} <= {(r[0], r[1]) for r in body}


def test_html_escapes_student_code_and_loads_nothing(tmp_path):
    attack = dict(ORIGINAL, weights='html = "<script>alert(1)</script><img src=https://x.test/a.png>"\n'
                                     + ORIGINAL["weights"])
    report = report_of(tmp_path, {"mallory": attack, "<b>eve</b>": attack})
    page = to_html(report)
    assert report.flagged and page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower() and "<link" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>eve</b>" not in page and "&lt;b&gt;eve&lt;/b&gt;" in page
    assert all(link.startswith("#pair-") for link in re.findall(r'\bhref="([^"]*)"', page))
    assert not re.findall(r'\bsrc="', page)
    assert "<mark>" in page


# --- the command ---------------------------------------------------------------------------------

def test_command_reads_a_graded_batch_and_writes_beside_it(tmp_path, capsys):
    out = tmp_path / "graded"
    submissions = class_of(tmp_path / "submitted", {"alice": ORIGINAL, "bob": DISGUISED, "carol": INDEPENDENT})
    submissions.append(("gone", tmp_path / "submitted" / "gone.ipynb"))
    for student, path in submissions:
        (out / student).mkdir(parents=True)
        result = GradingResult(A, str(path), student=student)
        (out / student / "results.json").write_text(json.dumps(result.to_dict()))
    assert run_command("--from", str(out)) == 0
    rows = list(csv.reader((out / "similarity.csv").open()))
    assert [r[:2] for r in rows[1:]] == [["alice", "bob"]]
    assert "alice" in (out / "similarity.html").read_text()
    captured = capsys.readouterr()
    assert "gone" in captured.err and "no such file" in captured.err
    assert "3 pair(s)" in captured.out


def test_command_reads_nbgrader_submitted_folders(tmp_path):
    course = tmp_path / "course"
    for student, answers in {"alice": ORIGINAL, "bob": DISGUISED}.items():
        make_submission(course / "submitted" / student / A / f"{A}.ipynb", A, answers)
    html, table = tmp_path / "r" / "s.html", tmp_path / "r" / "s.csv"
    assert run_command("--submissions", str(course), "--assignment", A,
                       "--html", str(html), "--csv", str(table), "--threshold", "0.9") == 0
    assert len(table.read_text().splitlines()) == 2 and html.is_file()


def test_command_exits_2_naming_the_folder_when_nothing_can_be_compared(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert run_command("--from", str(missing)) == 2
    assert str(missing) in capsys.readouterr().err

    lonely = tmp_path / "lonely"
    make_submission(lonely / "alice.ipynb", A, ORIGINAL)
    (lonely / "broken.ipynb").write_text("not a notebook")
    assert run_command("--submissions", str(lonely), "--assignment", A) == 2
    err = capsys.readouterr().err
    assert str(lonely) in err and "1 comparable submission" in err and "broken" in err
    assert not (lonely / "similarity.csv").exists()

    assert run_command("--submissions", str(lonely)) == 2
    assert "--assignment" in capsys.readouterr().err


def test_command_refuses_a_threshold_outside_zero_to_one():
    with pytest.raises(SystemExit):
        run_command("--from", "x", "--threshold", "1.5")
