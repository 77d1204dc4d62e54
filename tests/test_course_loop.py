"""One assignment round nbgrader's exchange, as the README's course quick-start
tells it: release, three students fetch, work and submit (one twice, one after
the due date), collect, grading by the kit and by nbgrader (which must record
the same points for every check, partial credit included), the gradebook,
feedback with the kit's report through release_feedback and fetch_feedback,
the status table and both exports.

The commands are read from the README's two `course-loop` blocks, so the
quick-start is what this test runs; the fast tests below pin the pieces of
`autograder/course_loop.py` that the loop cannot reach."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from autograder.course_loop import (
    BEGIN,
    END,
    WHOLE,
    course_status,
    feedback_page,
    nbgrader_settings,
    report_inside,
)
from conftest import LINEAR_HAND_SET_WEIGHTS, LINEAR_MODEL, LINEAR_SUMMARY, REPO

A = "linear_grading"
COURSE_ID = "intro-deep-learning-keras"
README = REPO / "README.md"


# ------------------------------------------------------------ the README's commands

def readme_commands(role: str) -> list[list[str]]:
    """The commands of the README block marked ``<!-- course-loop: ROLE -->``,
    one per line, comments dropped."""
    found = re.search(rf"<!-- course-loop: {role} -->\n```bash\n(.*?)```", README.read_text(), re.S)
    assert found, f"README.md has no ```bash block after <!-- course-loop: {role} -->"
    commands = [shlex.split(line, comments=True) for line in found.group(1).splitlines()]
    return [c for c in commands if c]


def argv(command: list[str]) -> list[str]:
    """A README command as this test runs it: the same words, with this
    Python's nbgrader and autograder."""
    tool, *rest = command
    if tool == "nbgrader":
        return [sys.executable, "-m", "nbgrader", *rest]
    assert tool == "autograder", f"the quick-start runs {tool!r}, neither nbgrader nor autograder"
    return [sys.executable, "-m", "autograder.cli", *rest]


def test_every_autograder_command_of_the_quick_start_exists_with_its_options():
    from autograder import cli

    (action,) = cli._parser()._subparsers._group_actions
    parser_commands = dict(action.choices)
    commands = readme_commands("instructor") + readme_commands("student")
    assert {c[0] for c in commands} == {"nbgrader", "autograder"}
    for command in commands:
        if command[0] != "autograder":
            continue
        verb, options = command[1], {w.split("=")[0] for w in command[2:] if w.startswith("--")}
        assert verb in parser_commands, f"the README runs `autograder {verb}`, which does not exist"
        accepted = {o for a in parser_commands[verb]._actions for o in a.option_strings}
        assert options <= accepted, f"`autograder {verb}` has no {options - accepted}"


# ------------------------------------------------------------ people and folders

class Course:
    """A course directory, an exchange and one home folder per person."""

    def __init__(self, root: Path):
        self.root = root
        self.exchange = root / "exchange"
        self.exchange.mkdir()
        self.exchange.chmod(0o777)
        self.dir = root / "course"
        (self.dir / "solutions").mkdir(parents=True)
        config = (REPO / "nbgrader_config.py").read_text()
        # A late submission scores 0 in nbgrader's export (nbgrader's default only reports it).
        config += '\nc.LateSubmissionPlugin.penalty_method = "zero"\n'
        (self.dir / "nbgrader_config.py").write_text(config)
        import shutil

        shutil.copytree(REPO / "solutions" / A, self.dir / "solutions" / A)
        self.ran: list[list[str]] = []
        self.seconds: list[tuple[str, float]] = []
        self.home("instructor", student=False)

    def home(self, who: str, student: bool = True) -> Path:
        """``who``'s home, with the hub's nbgrader settings in ~/.jupyter (on
        a hub the student id is the user name; here everyone is the same user)."""
        home = self.root / "home" / who
        if not home.is_dir():
            (home / ".jupyter").mkdir(parents=True)
            lines = [f"c.Exchange.root = {str(self.exchange)!r}"]
            if student:
                lines.append(f"c.CourseDirectory.student_id = {who!r}")
            (home / ".jupyter" / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
        return home

    def run(self, command: list[str], who: str = "instructor", *, expect: int = 0,
            timeout: int = 900) -> subprocess.CompletedProcess:
        home = self.home(who, student=who != "instructor")
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
        env.update(HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3",
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        started = time.perf_counter()
        completed = subprocess.run(argv(command), cwd=self.dir if who == "instructor" else home,
                                   env=env, capture_output=True, text=True, timeout=timeout)
        self.seconds.append((f"{who}: {shlex.join(command[:3])}", time.perf_counter() - started))
        assert completed.returncode == expect, (
            f"{who}: `{shlex.join(command)}` exited {completed.returncode}, not {expect}\n"
            + completed.stdout[-3000:] + completed.stderr[-3000:]
        )
        self.ran.append(command)
        return completed

    def together(self, runs) -> list[subprocess.CompletedProcess]:
        """Run ``(command, who[, expected exit code])`` at once, as people
        (or independent steps) do; the results in the same order."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(runs)) as pool:
            futures = [pool.submit(self.run, command, who, expect=(rest or [0])[0])
                       for command, who, *rest in runs]
            return [f.result() for f in futures]


def step(commands: list[list[str]], *words: str, having: str | None = None) -> list[str]:
    """The one README command that starts with ``words`` (and has the word ``having``)."""
    found = [c for c in commands if c[:len(words)] == list(words) and (having is None or having in c)]
    assert len(found) == 1, f"the README's quick-start has {len(found)} `{' '.join(words)}` command(s), not 1"
    return found[0]


def without_report(page: str) -> str:
    """A feedback page with the kit's report taken out again."""
    return re.sub("\n" + re.escape(BEGIN) + ".*?" + re.escape(END) + "\n", "", page, count=1, flags=re.S)


def answer(notebook: Path, answers: dict[str, str]) -> None:
    """Write ``answers`` (grade_id -> code) into a fetched notebook, as a
    student does in Jupyter."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers.pop(grade_id)
    assert not answers, f"{notebook} has no answer cells {sorted(answers)}"
    nbformat.write(nb, notebook)


def reference_answers() -> dict[str, str]:
    """The reference solution's answers; the optional experiments are left
    as a comment (they only print)."""
    source = nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    answers["experiments"] = "# More epochs helped until the loss flattened out."
    return answers


def gradebook_scores(course: Course) -> dict[str, dict]:
    """Per student: each check's auto score in nbgrader's gradebook, the
    total, seconds late and nbgrader's late penalty."""
    from nbgrader.api import Gradebook

    from autograder.records.nbgrader_gradebook import notebook_layout

    layout = notebook_layout(nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4))
    cell_checks = {cell.grade_id: cell.checks for cell in layout.grade_cells}
    found = {}
    with Gradebook(f"sqlite:///{course.dir / 'gradebook.db'}", COURSE_ID) as gradebook:
        for submission in gradebook.find_assignment(A).submissions:
            (notebook,) = submission.notebooks
            checks = {}
            for grade in notebook.grades:
                (check,) = cell_checks[grade.name]
                checks[check] = grade.auto_score
            found[submission.student.id] = {
                "checks": checks, "score": submission.score, "late": submission.total_seconds_late,
                "penalty": submission.late_submission_penalty}
    return found


# ------------------------------------------------------------------ the loop

@pytest.mark.slow
def test_one_assignment_round_the_exchange_with_three_students(tmp_path):
    course = Course(tmp_path)
    instructor, student = readme_commands("instructor"), readme_commands("student")
    started = time.perf_counter()

    # Release.
    course.run(step(instructor, "nbgrader", "generate_assignment"))
    course.run(step(instructor, "nbgrader", "release_assignment"))
    outbound = course.exchange / COURSE_ID / "outbound" / A
    assert sorted(p.name for p in outbound.iterdir()) == ["grading.npz", f"{A}.ipynb"]

    # Students fetch, each in their own home. alice leaves it blank and checks
    # it; bob submits it blank, then with partial answers; carol answers
    # everything, after the due date.
    course.together([(step(student, "nbgrader", "fetch_assignment"), who) for who in ("alice", "bob", "carol")])
    for who in ("alice", "bob", "carol"):
        assert (course.home(who) / A / f"{A}.ipynb").is_file() and (course.home(who) / A / "grading.npz").is_file()
    check, _ = course.together([(step(student, "autograder", "check"), "alice", 1),
                                (step(student, "nbgrader", "submit"), "bob")])
    assert "raised an error" in check.stdout and "summary" in check.stdout, check.stdout
    answer(course.home("bob") / A / f"{A}.ipynb", {
        "summary": LINEAR_SUMMARY, "build_model": LINEAR_MODEL, "train": LINEAR_HAND_SET_WEIGHTS})
    course.together([(step(student, "nbgrader", "submit"), "alice"), (step(student, "nbgrader", "submit"), "bob")])

    # The due date falls between the on-time submissions and carol's.
    due = (datetime.now(timezone.utc) + timedelta(seconds=1)).replace(microsecond=0)
    set_due = step(instructor, "nbgrader", "db", "assignment", "add")
    at = set_due.index("--duedate")
    course.run([*set_due[:at + 1], due.strftime("%Y-%m-%d %H:%M:%S UTC"), *set_due[at + 2:]])
    while datetime.now(timezone.utc) <= due:
        time.sleep(0.1)
    answer(course.home("carol") / A / f"{A}.ipynb", reference_answers())
    course.run(step(student, "nbgrader", "submit"), "carol")
    inbound = sorted(p.name.split("+")[0] for p in (course.exchange / COURSE_ID / "inbound").iterdir())
    assert inbound == ["alice", "bob", "bob", "carol"]

    # Collect: each student's latest submission.
    course.run(step(instructor, "nbgrader", "collect"))
    collected = nbformat.read(course.dir / "submitted" / "bob" / A / f"{A}.ipynb", as_version=4)
    assert any(c.source == LINEAR_MODEL for c in collected.cells), "bob's second submission must count"
    midway = course_status(nbgrader_settings(course.dir, course.exchange),
                           f"sqlite:///{course.dir / 'gradebook.db'}")
    (row,) = midway["assignments"]
    assert (row["released"], row["stages"]["collected"]["count"], row["stages"]["graded"]["missing"]) == (
        True, 3, ["alice", "bob", "carol"])

    # Grade with both engines at once (they share nothing but submitted/):
    # the same points for every check.
    kit_grade = step(instructor, "autograder", "grade")
    course.together([(kit_grade, "instructor"), (step(instructor, "nbgrader", "autograde"), "instructor")])
    out = course.dir / kit_grade[kit_grade.index("--output-dir") + 1]
    kit = {s: json.loads((out / s / "results.json").read_text()) for s in ("alice", "bob", "carol")}
    assert {s: r["score"] for s, r in kit.items()} == {"alice": 0, "bob": 6.5, "carol": 10}
    kit_checks = {s: {t["name"]: t["score"] for t in r["tests"]} for s, r in kit.items()}
    by_nbgrader = gradebook_scores(course)
    assert {s: g["checks"] for s, g in by_nbgrader.items()} == kit_checks
    course.run(step(instructor, "autograder", "export", having="--gradebook"))
    recorded = gradebook_scores(course)
    assert {s: g["checks"] for s, g in recorded.items()} == kit_checks
    # nbgrader's late penalty stands: carol was late and, with "zero", loses her points.
    assert {s: (g["late"] > 0, g["penalty"]) for s, g in recorded.items()} == {
        "alice": (False, 0.0), "bob": (False, 0.0), "carol": (True, 10.0)}

    # Feedback: nbgrader's page with the kit's report inside, through the exchange.
    course.run(step(instructor, "nbgrader", "generate_feedback"))
    nbgrader_pages = {s: (course.dir / "feedback" / s / A / f"{A}.html").read_text() for s in kit}
    placed = course.run(step(instructor, "autograder", "feedback"))
    assert placed.stdout.count("inside nbgrader's feedback") == 3, placed.stdout
    course.run(step(instructor, "nbgrader", "release_feedback"))
    course.together([(step(student, "nbgrader", "fetch_feedback"), who) for who in kit])
    for who in kit:
        (fetched,) = (course.home(who) / A / "feedback").glob(f"*/{A}.html")
        page = fetched.read_text()
        assert report_inside(page) == (out / who / "report.html").read_text(), who
        assert without_report(page) == nbgrader_pages[who], f"{who}'s page lost part of nbgrader's feedback"
    bob_sent = sorted((course.home("bob") / ".local" / "share" / "jupyter" / "nbgrader_cache" / COURSE_ID).iterdir())
    assert len(bob_sent) == 2  # both submissions are in bob's cache; only the one collected has feedback
    (bob_feedback,) = (course.home("bob") / A / "feedback").iterdir()
    assert bob_feedback.name == (course.dir / "submitted" / "bob" / A / "timestamp.txt").read_text()

    # What the instructor sees, and both exports.
    kit_csv = step(instructor, "autograder", "export", having="--csv")
    status_table, status_json, _, _ = course.together([
        (step(instructor, "autograder", "status"), "instructor"),
        ([*step(instructor, "autograder", "status"), "--json"], "instructor"),
        (step(instructor, "nbgrader", "export"), "instructor"),
        (kit_csv, "instructor"),
    ])
    table = status_table.stdout
    assert re.search(rf"^{A}\s+{re.escape(due.strftime('%Y-%m-%d %H:%M:%S'))}\s+yes"
                     r"\s+3/3\s+3/3\s+3/3\s+3/3\s+3/3$", table, re.M), table
    assert re.search(r"late: carol \(\d+ s\)", table) and "submitted more than once: bob" in table, table
    assert "not " not in table, table
    status = json.loads(status_json.stdout)
    (row,) = status["assignments"]
    assert status["students"] == ["alice", "bob", "carol"]
    assert {stage: found["count"] for stage, found in row["stages"].items()} == {
        "submitted": 3, "collected": 3, "graded": 3, "feedback": 3, "feedback_released": 3}
    assert (list(row["late"]), row["resubmitted"]) == (["carol"], ["bob"])

    # The exports agree: nbgrader's raw score is the kit's score.
    nbgrader_rows = {r["student_id"]: r for r in csv.DictReader((course.dir / "grades.csv").open())}
    kit_rows = {r["student"]: r for r in csv.DictReader((course.dir / kit_csv[kit_csv.index("--csv") + 1]).open())}
    assert {s: float(r["raw_score"]) for s, r in nbgrader_rows.items()} == {
        s: float(r["score"]) for s, r in kit_rows.items()}
    assert {s: float(r["score"]) for s, r in nbgrader_rows.items()} == {"alice": 0, "bob": 6.5, "carol": 0}

    # Every command of the quick-start ran, as written (the due date substituted).
    ran = {shlex.join(c) for c in course.ran}
    for command in instructor + student:
        if command is set_due:
            continue
        assert shlex.join(command) in ran, f"the test never ran the README's `{shlex.join(command)}`"
    print(f"course loop: {time.perf_counter() - started:.0f} s; slowest steps: "
          + ", ".join(f"{what} {s:.0f} s" for what, s in sorted(course.seconds, key=lambda x: -x[1])[:6]))


# ------------------------------------------------- the pieces, without nbgrader running

NBGRADER_PAGE = "<!DOCTYPE html>\n<html>\n<head><title>nbgrader</title></head>\n<body class=\"nb\">\n<p>Score: 6.5</p>\n</body>\n</html>\n"
REPORT = '<!DOCTYPE html><html><head><style>h1 {color: red}</style></head><body><h1>bob & "co"</h1></body></html>'


def test_the_report_goes_inside_nbgrader_page_once_and_comes_out_whole():
    page = feedback_page(NBGRADER_PAGE, REPORT)
    assert page.index("<body") < page.index(BEGIN) < page.index("<p>Score: 6.5</p>")
    assert report_inside(page) == REPORT
    assert without_report(page) == NBGRADER_PAGE
    assert "<script" not in page.split(BEGIN)[1] and 'sandbox=""' in page
    again = feedback_page(page, REPORT.replace("bob", "bob, regraded"))
    assert again.count(BEGIN) == 1 and report_inside(again) == REPORT.replace("bob", "bob, regraded")
    assert without_report(again) == NBGRADER_PAGE


def test_without_nbgrader_page_the_report_is_the_page_and_a_rerun_replaces_it():
    page = feedback_page(None, REPORT)
    assert page.startswith(WHOLE) and report_inside(page) == REPORT
    assert feedback_page(page, "<html>new</html>") == f"{WHOLE}\n<html>new</html>"
    assert report_inside(feedback_page("<p>no body tag</p>", REPORT)) == REPORT


def _graded(out: Path, course_dir: Path, student: str, *, collected=True, other_notebook=False,
            secret=True) -> None:
    """``student``'s graded result in ``out`` and collected submission in ``course_dir``."""
    import hashlib

    folder = course_dir / "submitted" / student / A
    notebook = folder / f"{A}.ipynb"
    if collected:
        folder.mkdir(parents=True)
        notebook.write_text(f"{student}'s notebook")
        (folder / "timestamp.txt").write_text("2025-03-14 16:59:00.000000 UTC")
        if secret:
            (folder / "submission_secret.txt").write_text(f"{student}-secret")
    graded_text = "another notebook" if other_notebook or not collected else f"{student}'s notebook"
    (out / student).mkdir(parents=True)
    (out / student / "results.json").write_text(json.dumps({
        "assignment": A, "submission": str(notebook), "student": student, "score": 1, "max_score": 10,
        "tests": [], "fingerprint": {"submission_sha256": hashlib.sha256(graded_text.encode()).hexdigest()}}))
    (out / student / "report.html").write_text(REPORT.replace("bob", student))


def cli(*args: str) -> int:
    """``autograder ARGS`` in this process."""
    from autograder.cli import main

    return main(list(args))


def test_feedback_places_each_report_and_skips_what_it_cannot_release(tmp_path, capsys):
    course_dir, out = tmp_path / "course", tmp_path / "graded"
    (course_dir / "feedback" / "alice" / A).mkdir(parents=True)
    (course_dir / "feedback" / "alice" / A / f"{A}.html").write_text(NBGRADER_PAGE)
    _graded(out, course_dir, "alice")                        # nbgrader's page exists
    _graded(out, course_dir, "bob")                          # no nbgrader page
    _graded(out, course_dir, "carol", other_notebook=True)   # collected again after grading
    _graded(out, course_dir, "dave", collected=False)        # graded, never collected
    _graded(out, course_dir, "erin", secret=False)           # collected without the exchange
    code = cli("feedback", "--from", str(out), "--assignment", A, "--course-dir", str(course_dir))
    printed = capsys.readouterr()
    assert code == 1

    alice = (course_dir / "feedback" / "alice" / A / f"{A}.html").read_text()
    assert report_inside(alice) == REPORT.replace("bob", "alice") and without_report(alice) == NBGRADER_PAGE
    bob = course_dir / "feedback" / "bob" / A
    assert report_inside((bob / f"{A}.html").read_text()) == REPORT
    assert (bob / "submission_secret.txt").read_text() == "bob-secret"  # release_feedback reads both
    assert (bob / "timestamp.txt").is_file()
    assert not (course_dir / "feedback" / "carol").exists() and not (course_dir / "feedback" / "dave").exists()
    assert not (course_dir / "feedback" / "erin").exists()
    skipped = {line.split(":")[0]: line for line in printed.err.splitlines()}
    assert "graded another notebook" in skipped["carol"] and "autograder grade" in skipped["carol"]
    assert "nbgrader collect" in skipped["dave"]
    assert "submission_secret.txt" in skipped["erin"]
    assert "alice: report inside nbgrader's feedback" in printed.out
    assert "bob: report as the feedback page" in printed.out


def test_feedback_without_results_of_the_assignment_says_what_to_run(tmp_path, capsys):
    (tmp_path / "graded").mkdir()
    assert cli("feedback", "--from", str(tmp_path / "graded"), "--assignment", A,
               "--course-dir", str(tmp_path)) == 2
    assert "autograder grade submitted --assignment linear_grading" in capsys.readouterr().err


def test_status_without_a_gradebook_exits_2_and_says_how_to_get_one(tmp_path, capsys):
    assert cli("status", "--course-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"No gradebook at {tmp_path / 'gradebook.db'}" in err and "nbgrader generate_assignment" in err
    assert not (tmp_path / "gradebook.db").exists(), "status must not create a gradebook"


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own, while seeding
def test_status_counts_each_step_from_the_gradebook_and_the_folders(tmp_path, capsys, monkeypatch):
    from nbgrader.api import Gradebook
    from nbgrader.utils import notebook_hash

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    course_dir, exchange = tmp_path / "course", tmp_path / "exchange"
    course_dir.mkdir()
    (course_dir / "nbgrader_config.py").write_text(f"c.CourseDirectory.course_id = {COURSE_ID!r}\n")
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", COURSE_ID) as gradebook:
        gradebook.update_or_create_assignment(A, duedate="2025-03-14 17:00:00 UTC")
        gradebook.update_or_create_assignment("boston_housing")
        for who in ("alice", "bob", "carol", "dave"):
            gradebook.update_or_create_student(who)
        gradebook.update_or_create_submission(A, "alice", timestamp="2025-03-14 16:00:00 UTC")
        gradebook.update_or_create_submission(A, "bob", timestamp="2025-03-14 17:30:00 UTC")
    mine = exchange / COURSE_ID
    (mine / "outbound" / A).mkdir(parents=True)
    (mine / "feedback").mkdir()
    for entry in ("alice+linear_grading+2025-03-14 15:00:00.000000 UTC",
                  "alice+linear_grading+2025-03-14 16:00:00.000000 UTC",
                  "bob+linear_grading+2025-03-14 17:30:00.000000 UTC",
                  "carol+linear_grading+2025-03-14 17:40:00.000000 UTC",
                  "carol+boston_housing+2025-03-14 17:40:00.000000 UTC"):
        (mine / "inbound" / entry).mkdir(parents=True)
    for who in ("alice", "bob"):
        (course_dir / "submitted" / who / A).mkdir(parents=True)
        (course_dir / "submitted" / who / A / f"{A}.ipynb").write_text("{}")
        folder = course_dir / "feedback" / who / A
        folder.mkdir(parents=True)
        (folder / f"{A}.html").write_text(f"{who}'s feedback")
        (folder / "submission_secret.txt").write_text(who)
    released = mine / "feedback" / f"{notebook_hash(secret='alice', notebook_id=A)}.html"
    released.write_text("alice's feedback")
    (mine / "feedback" / f"{notebook_hash(secret='bob', notebook_id=A)}.html").write_text("older")

    assert cli("status", "--course-dir", str(course_dir), "--exchange", str(exchange), "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["students"] == ["alice", "bob", "carol", "dave"]
    rows = {row["name"]: row for row in status["assignments"]}
    assert sorted(rows) == ["boston_housing", A]
    row = rows[A]
    assert row["released"] is True and row["duedate"] == "2025-03-14 17:00:00"
    missing = {stage: found["missing"] for stage, found in row["stages"].items()}
    assert missing == {"submitted": ["dave"], "collected": ["carol", "dave"], "graded": ["carol", "dave"],
                       "feedback": ["carol", "dave"], "feedback_released": ["bob", "carol", "dave"]}
    assert row["late"] == {"bob": 1800} and row["resubmitted"] == ["alice"]
    assert row["stale_feedback"] == ["bob"]
    assert rows["boston_housing"]["released"] is False
    assert rows["boston_housing"]["stages"]["submitted"]["students"] == ["carol"]

    assert cli("status", "--course-dir", str(course_dir), "--exchange", str(exchange)) == 0
    table = capsys.readouterr().out
    assert re.search(rf"^{A}\s+2025-03-14 17:00:00\s+yes\s+3/4\s+2/4\s+2/4\s+2/4\s+1/4$", table, re.M), table
    assert "not submitted: dave" in table and "late: bob (30 min)" in table
    assert "feedback changed since released: bob" in table

    assert cli("status", "--course-dir", str(course_dir), "--exchange", str(tmp_path / "nowhere")) == 0
    table = capsys.readouterr().out
    assert "not found" in table and re.search(rf"^{A}\s+\S+ \S+\s+\?\s+\?\s+2/4", table, re.M), table
