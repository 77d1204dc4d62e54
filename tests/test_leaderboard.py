"""`autograder leaderboard`: a graded batch ranked by the suite's own
measurement, ties to fewer parameters then shorter training, students
under their alias or an anonymous name, and nothing a student wrote run as
HTML or as a spreadsheet formula."""

import csv
import json
import re

import nbformat
import pytest

from autograder.cli import main
from autograder.engine.prepare import declared_alias
from autograder.records.gradescope import leaderboard as gradescope_entries
from autograder.records.leaderboard import anonymous_name, rank
from autograder.results import GradingResult

A = "cifar10_cnn"
CLASS = {
    # student: (alias, test accuracy, parameters, training seconds)
    "s1001": ("<script>alert('pwned')</script>", 0.7712, 115_000, 110.0),
    "s1002": ("", 0.7712, 90_000, 130.0),   # ties s1001 on accuracy, fewer parameters: ahead
    "s1003": ("Conv Queen", 0.7712, 90_000, 95.0),  # ties s1002 on both, trained faster: ahead
    "s1004": ("=HYPERLINK(\"http://x\")", 0.8120, 480_000, 300.0),
    "s1005": ("", 0.6011, 20_000, 40.0),
}


def _result(student, alias, accuracy, parameters, seconds) -> GradingResult:
    return GradingResult(A, f"submitted/{student}/{A}.ipynb", student=student, alias=alias,
                         timings={"execute": seconds}, device="GPU 0 (NVIDIA H200, 6% of its memory)",
                         metrics={"test_accuracy": accuracy, "parameters": parameters})


@pytest.fixture
def graded(tmp_path):
    out = tmp_path / "graded"
    for student, values in CLASS.items():
        (out / student).mkdir(parents=True)
        (out / student / "results.json").write_text(json.dumps(_result(student, *values).to_dict()))
    (out / "s1006").mkdir()  # graded, but its model measured nothing: not on the board
    (out / "s1006" / "results.json").write_text(json.dumps(GradingResult(A, "x.ipynb").to_dict()))
    return out


def test_the_board_ranks_best_first_and_breaks_ties_by_parameters_then_training_time(graded, capsys):
    assert main(["leaderboard", "--from", str(graded), "--show-ids"]) == 0
    rows = list(csv.DictReader((graded / "leaderboard.csv").open()))
    assert [(r["rank"], r["name"]) for r in rows] == [
        ("1", "s1004"), ("2", "s1003"), ("3", "s1002"), ("4", "s1001"), ("5", "s1005")]
    assert rows[0]["value"] == "0.812" and rows[0]["parameters"] == "480000"
    assert rows[1]["training_seconds"] == "95.0" and rows[1]["device"].startswith("GPU 0")
    assert "ranked 5 of 6 student(s)" in capsys.readouterr().out


def test_students_appear_by_alias_or_anonymously_never_by_id(graded):
    assert main(["leaderboard", "--from", str(graded)]) == 0
    names = [r["name"] for r in csv.DictReader((graded / "leaderboard.csv").open())]
    assert names[1] == "Conv Queen" and names[3] == "<script>alert('pwned')</script>"
    anonymous = [names[2], names[4]]
    assert all(re.fullmatch(r"Anonymous [0-9a-f]{6}", n) for n in anonymous) and len(set(anonymous)) == 2
    page = (graded / "leaderboard.html").read_text()
    assert not any(student in page for student in CLASS) and not any(s in names for s in CLASS)


def test_a_second_board_of_the_course_gives_the_same_anonymous_names(graded, tmp_path):
    main(["leaderboard", "--from", str(graded), "--output-dir", str(tmp_path / "first")])
    main(["leaderboard", "--from", str(graded), "--output-dir", str(tmp_path / "second")])
    assert (tmp_path / "first" / "leaderboard.csv").read_text() == \
        (tmp_path / "second" / "leaderboard.csv").read_text()
    assert anonymous_name("s1002", b"one course") != anonymous_name("s1002", b"another course")


def test_the_page_is_self_contained_and_shows_what_students_wrote_as_text(graded):
    main(["leaderboard", "--from", str(graded)])
    page = (graded / "leaderboard.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from elsewhere
    formula = [r for r in csv.reader((graded / "leaderboard.csv").open()) if "HYPERLINK" in r[1]][0]
    assert formula[1].startswith("'=")  # a spreadsheet shows it, never runs it


def test_the_board_agrees_with_the_gradescope_leaderboard_entry(graded):
    results = [_result(student, *values) for student, values in CLASS.items()]
    for entry, result in zip(sorted(rank(results, key=b"k", show_ids=True), key=lambda e: e.name),
                             sorted(results, key=lambda r: r.student)):
        [gradescope] = gradescope_entries(result)
        assert (entry.metric, entry.value) == (gradescope["name"], gradescope["value"])


def test_a_batch_nothing_on_it_can_be_ranked_by_is_an_error(tmp_path, capsys):
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "results.json").write_text(json.dumps(GradingResult(A, "x.ipynb").to_dict()))
    assert main(["leaderboard", "--from", str(tmp_path)]) == 2
    assert "has a metric to rank by (test_accuracy or test_mae)" in capsys.readouterr().err


@pytest.mark.parametrize("source, alias", [
    ('LEADERBOARD_ALIAS = "Neural Nemo"', "Neural Nemo"),
    ('LEADERBOARD_ALIAS = "first"\nLEADERBOARD_ALIAS = "  second\\n\\tbest  "', "second best"),
    ("LEADERBOARD_ALIAS = name_from_somewhere()", ""),  # only a string the source states
    ('%time x = 1\nLEADERBOARD_ALIAS = "magic"', ""),  # not Python: not read
    ('LEADERBOARD_ALIAS = "' + "x" * 100 + '"', "x" * 40),
])
def test_the_alias_is_read_from_the_notebook_source_without_running_it(source, alias):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    assert declared_alias(notebook) == alias
