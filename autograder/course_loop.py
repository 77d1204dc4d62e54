"""The course loop through nbgrader's exchange: the kit's report delivered
with nbgrader's feedback, and where every assignment stands.

``autograder feedback --from OUT --assignment A`` puts each student's
``OUT/<student>/report.html`` into ``feedback/<student>/A/<notebook>.html``,
the page ``nbgrader release_feedback`` sends and ``nbgrader fetch_feedback``
brings back. nbgrader delivers exactly one page per submitted notebook
(``release_feedback`` names each ``feedback/<student>/A/<name>.html`` in the
exchange by a hash of the submission's secret and ``<name>``, and
``fetch_feedback`` only asks for the names of the notebooks the student
submitted), so a separate ``A_report.html`` would be released and never
fetched. The report therefore goes inside nbgrader's page, in a sandboxed
frame between two markers, replaced on every run; where nbgrader made no page
(``nbgrader autograde`` did not run), the report is the page, with the
submission's ``timestamp.txt`` and ``submission_secret.txt`` beside it as
``release_feedback`` needs. ``nbgrader generate_feedback --force`` rewrites the
folder: run ``autograder feedback`` after it.

``autograder status`` reads nbgrader's gradebook and the course and exchange
folders and prints, per assignment, who was released to, submitted, was
collected, graded, got feedback and had it released, and who is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder import options
from autograder.course import default_course_dir

BEGIN = "<!-- keras-autograder report: begin -->"
END = "<!-- keras-autograder report: end -->"
WHOLE = "<!-- keras-autograder report: whole page -->"
"""First line of a page that is the kit's report alone (no nbgrader feedback)."""
DEFAULT_EXCHANGE = "/usr/local/share/nbgrader/exchange"
"""nbgrader's default ``Exchange.root``."""
SUBMISSION_FILES = ("timestamp.txt", "submission_secret.txt")
"""What ``nbgrader release_feedback`` reads beside each feedback page."""


class CourseLoopError(Exception):
    """An input is missing or wrong; the message says what to do."""


def _fail(message: str) -> int:
    print(f"autograder: error: {message}", file=sys.stderr)
    return 2


# ------------------------------------------------------------ nbgrader's settings

@dataclass(frozen=True)
class Settings:
    """What the course loop needs from nbgrader's configuration."""

    course_dir: Path
    course_id: str
    exchange_root: Path
    submitted: str = "submitted"
    feedback: str = "feedback"

    def submitted_dir(self, student: str, assignment: str) -> Path:
        return self.course_dir / self.submitted / student / assignment

    def feedback_dir(self, student: str, assignment: str) -> Path:
        return self.course_dir / self.feedback / student / assignment

    @property
    def exchange_course(self) -> Path:
        return self.exchange_root / self.course_id


def nbgrader_settings(course_dir: Path, exchange: Path | None = None) -> Settings:
    """Read ``nbgrader_config.py`` the way nbgrader does: Jupyter's config
    folders (system first, the user's ``~/.jupyter`` later), then the course
    directory's, each later file winning."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    course_dir = Path(course_dir).resolve()
    merged = Config()
    for folder in [*reversed(jupyter_config_path()), str(course_dir)]:
        path = Path(folder) / "nbgrader_config.py"
        if not path.is_file():
            continue
        try:
            merged.merge(PyFileConfigLoader(path.name, path=str(path.parent)).load_config())
        except ConfigFileNotFound:
            continue
        except Exception as exc:  # the file is Python: anything can go wrong in it
            raise CourseLoopError(f"{path} could not be read ({type(exc).__name__}: {exc}); fix it "
                                  "and run again (nbgrader reads the same file).") from exc
    coursedir = merged.get("CourseDirectory", {})

    def text(section, key, default):
        value = section.get(key)
        return value if isinstance(value, str) and value else default

    root = exchange or Path(text(merged.get("Exchange", {}), "root", DEFAULT_EXCHANGE))
    return Settings(course_dir=course_dir, course_id=text(coursedir, "course_id", "default_course"),
                    exchange_root=Path(root),
                    submitted=text(coursedir, "submitted_directory", "submitted"),
                    feedback=text(coursedir, "feedback_directory", "feedback"))


# ------------------------------------------------------------ feedback pages

def _frame(report_html: str) -> str:
    """The kit's report as a block to put inside another page: a sandboxed
    frame (no script, its own styles) between the two markers."""
    return (
        f"{BEGIN}\n<section id=\"keras-autograder-report\" style=\"margin:1rem auto;max-width:1100px\">\n"
        "<h2>Automated checks (keras-autograder)</h2>\n"
        "<p>What the hidden checks found, with the figures of your model; nbgrader's "
        "copy of your notebook with its scores follows.</p>\n"
        "<iframe title=\"keras-autograder report\" sandbox=\"\" "
        "style=\"width:100%;height:85vh;border:1px solid #d8dce3;border-radius:6px\" "
        f"srcdoc=\"{html.escape(report_html, quote=True)}\"></iframe>\n</section>\n{END}"
    )


def feedback_page(existing: str | None, report_html: str) -> str:
    """The page to release: nbgrader's feedback ``existing`` with the report
    inside it (replacing the one an earlier run put there), or, without
    nbgrader's page, the report alone."""
    if existing is None or existing.startswith(WHOLE):
        return f"{WHOLE}\n{report_html}"
    block = _frame(report_html)
    start, end = existing.find(BEGIN), existing.find(END)
    if start != -1 and end > start:
        return existing[:start] + block + existing[end + len(END):]
    body = re.search(r"<body\b[^>]*>", existing, re.I)
    at = body.end() if body else 0
    return existing[:at] + "\n" + block + "\n" + existing[at:]


def report_inside(page: str) -> str | None:
    """The kit's report as a student's fetched page holds it, or ``None``."""
    if page.startswith(WHOLE):
        return page[len(WHOLE) + 1:]
    found = re.search(re.escape(BEGIN) + r'.*?srcdoc="([^"]*)".*?' + re.escape(END), page, re.S)
    return html.unescape(found.group(1)) if found else None


@dataclass
class Placed:
    student: str
    page: Path
    inside_nbgrader: bool


@dataclass
class FeedbackOutcome:
    placed: list[Placed] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(student, why) for each report that was not placed."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def place_reports(out_dir: Path, assignment: str, settings: Settings) -> FeedbackOutcome:
    """Put each student's ``out_dir/<student>/report.html`` of ``assignment``
    into nbgrader's feedback folder (see the module's description)."""
    from autograder.records.common import RESULTS_FILE, RecordsError, load_results_reporting

    try:
        results = [r for r in load_results_reporting(out_dir) if r.assignment == assignment]
    except RecordsError as exc:
        raise CourseLoopError(str(exc)) from exc
    if not results:
        raise CourseLoopError(
            f"{out_dir} holds no graded results of {assignment!r}. Grade the collected submissions "
            f"first: `autograder grade {settings.submitted} --assignment {assignment} --course-dir "
            f"{settings.course_dir} --output-dir {out_dir}`."
        )
    outcome = FeedbackOutcome()
    for result in results:
        student, graded = result.student, Path(out_dir) / result.student
        report = graded / "report.html"
        collected = settings.submitted_dir(student, assignment)
        notebook = collected / Path(result.submission).name
        if not report.is_file():
            outcome.skipped.append((student, f"{report} does not exist; regrade with "
                                             "`autograder grade ... --output-dir` to write it"))
            continue
        if not notebook.is_file():
            outcome.skipped.append((student, f"{notebook} does not exist: nothing of theirs was "
                                             f"collected to release feedback to (`nbgrader collect {assignment}`)"))
            continue
        recorded = json.loads((graded / RESULTS_FILE).read_text()).get("fingerprint", {})
        if recorded.get("submission_sha256") not in (None, _sha256(notebook)):
            outcome.skipped.append((student, f"{graded / RESULTS_FILE} graded another notebook than "
                                             f"{notebook} (collected again since?); regrade the folder "
                                             "with `autograder grade` and run this again"))
            continue
        target_dir = settings.feedback_dir(student, assignment)
        page = target_dir / f"{notebook.stem}.html"
        existing = page.read_text(encoding="utf-8") if page.is_file() else None
        if existing is None or existing.startswith(WHOLE):
            missing = [name for name in SUBMISSION_FILES if not (collected / name).is_file()]
            if missing:
                outcome.skipped.append((student, f"{collected} lacks {', '.join(missing)}, which "
                                                 "nbgrader's collect leaves there and release_feedback "
                                                 "needs; collect it with `nbgrader collect`"))
                continue
            target_dir.mkdir(parents=True, exist_ok=True)
            for name in SUBMISSION_FILES:
                (target_dir / name).write_bytes((collected / name).read_bytes())
        text = feedback_page(existing, report.read_text(encoding="utf-8"))
        temporary = page.with_name(f".{page.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, page)
        outcome.placed.append(Placed(student, page, existing is not None and not existing.startswith(WHOLE)))
    return outcome


def run_feedback(args: argparse.Namespace) -> int:
    try:
        settings = nbgrader_settings(args.course_dir or default_course_dir())
        outcome = place_reports(args.from_dir, args.assignment, settings)
    except CourseLoopError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write the feedback: {exc}.")
    for placed in outcome.placed:
        how = "inside nbgrader's feedback" if placed.inside_nbgrader else "as the feedback page"
        print(f"{placed.student}: report {how}: {placed.page}")
    for student, why in outcome.skipped:
        print(f"{student}: skipped: {why}", file=sys.stderr)
    print(f"{len(outcome.placed)} report(s) ready; `nbgrader release_feedback {args.assignment}` "
          "sends them to the students.")
    return 1 if outcome.skipped else 0


# ------------------------------------------------------------------ status

STAGES = ("submitted", "collected", "graded", "feedback", "feedback_released")
HEADINGS = {"submitted": "submitted", "collected": "collected", "graded": "graded",
            "feedback": "feedback", "feedback_released": "fb released"}


def _sqlite_path(db_url: str) -> Path | None:
    return Path(db_url[len("sqlite:///"):]) if db_url.startswith("sqlite:///") else None


def _exchange_students(settings: Settings, assignment: str) -> dict[str, int]:
    """Students with a submission of ``assignment`` in the exchange's inbound
    folder, and how many each made."""
    inbound = settings.exchange_course / "inbound"
    counts: dict[str, int] = {}
    for entry in (inbound.iterdir() if inbound.is_dir() else ()):
        parts = entry.name.split("+")
        if entry.is_dir() and len(parts) >= 3 and parts[1] == assignment:
            counts[parts[0]] = counts.get(parts[0], 0) + 1
    return counts


def _students_with(root: Path, assignment: str, pattern: str) -> set[str]:
    if not root.is_dir():
        return set()
    return {p.name for p in root.iterdir() if any((p / assignment).glob(pattern))}


def _feedback_state(settings: Settings, student: str, assignment: str) -> str | None:
    """``released`` when every feedback page of the student is in the exchange
    as it is now, ``changed`` when one was released and has changed since,
    ``unreleased`` otherwise; ``None`` without pages."""
    from nbgrader.utils import notebook_hash

    folder = settings.feedback_dir(student, assignment)
    pages = sorted(folder.glob("*.html"))
    secret_file = folder / "submission_secret.txt"
    if not pages or not secret_file.is_file():
        return None
    secret = secret_file.read_text()
    sent = [settings.exchange_course / "feedback" / f"{notebook_hash(secret=secret, notebook_id=p.stem)}.html"
            for p in pages]
    if all(s.is_file() and s.read_bytes() == p.read_bytes() for s, p in zip(sent, pages)):
        return "released"
    return "changed" if any(s.is_file() for s in sent) else "unreleased"


def course_status(settings: Settings, db_url: str) -> dict:
    """Where every assignment of the course stands, as a JSON-able dict."""
    path = _sqlite_path(db_url)
    if path is not None and not path.is_file():
        raise CourseLoopError(
            f"No gradebook at {path}. nbgrader creates it on its first command in the course "
            f"directory: run `nbgrader generate_assignment NAME` in {settings.course_dir}, or give "
            "--db with the database your nbgrader_config.py names."
        )
    from nbgrader.api import Gradebook

    saved_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{saved_path}"  # nbgrader runs `alembic`
    try:
        gradebook = Gradebook(db_url, course_id=settings.course_id)
    except Exception as exc:  # SQLAlchemy, alembic: anything that stops the database opening
        raise CourseLoopError(f"Cannot open the gradebook {db_url}: {exc}.") from exc
    finally:
        os.environ["PATH"] = saved_path
    with gradebook:
        roster = {s.id for s in gradebook.students}
        assignments = {}
        for a in gradebook.assignments:
            assignments[a.name] = {
                "duedate": a.duedate.isoformat(sep=" ") if a.duedate else None,
                "graded": {s.student.id for s in a.submissions},
                "late": {s.student.id: round(s.total_seconds_late) for s in a.submissions
                         if s.total_seconds_late > 0},
                "needs_manual_grade": {s.student.id for s in a.submissions if s.needs_manual_grade},
            }
    exchange_found = settings.exchange_root.is_dir()
    source = settings.course_dir / "solutions"
    for folder in (source.iterdir() if source.is_dir() else ()):
        if folder.is_dir() and folder.name not in assignments and any(folder.glob("*.ipynb")):
            assignments[folder.name] = {"duedate": None, "graded": set(), "late": {},
                                        "needs_manual_grade": set()}
    rows = []
    for name in sorted(assignments):
        info = assignments[name]
        submissions = _exchange_students(settings, name)
        feedback = _students_with(settings.course_dir / settings.feedback, name, "*.html")
        sent = {s: _feedback_state(settings, s, name) for s in feedback} if exchange_found else {}
        stages = {
            "submitted": set(submissions) if exchange_found else None,
            "collected": _students_with(settings.course_dir / settings.submitted, name, "*.ipynb"),
            "graded": info["graded"],
            "feedback": feedback,
            "feedback_released": {s for s, state in sent.items() if state == "released"}
                                 if exchange_found else None,
        }
        rows.append({"name": name, "duedate": info["duedate"],
                     "released": (settings.exchange_course / "outbound" / name).is_dir()
                     if exchange_found else None,
                     "stages": stages, "late": info["late"],
                     "needs_manual_grade": info["needs_manual_grade"],
                     "submissions": submissions,
                     "stale_feedback": sorted(s for s, state in sent.items() if state == "changed")})
        roster |= {s for found in stages.values() if found for s in found}
    students = sorted(roster)
    for row in rows:
        row["stages"] = {
            stage: None if found is None else {"count": len(found), "students": sorted(found),
                                               "missing": sorted(set(students) - found)}
            for stage, found in row["stages"].items()
        }
        row["needs_manual_grade"] = sorted(row["needs_manual_grade"])
        row["resubmitted"] = sorted(s for s, n in row.pop("submissions").items() if n > 1)
    return {"course_id": settings.course_id, "course_dir": str(settings.course_dir), "gradebook": db_url,
            "exchange": str(settings.exchange_root), "exchange_found": exchange_found,
            "students": students, "assignments": rows}


def status_table(status: dict) -> str:
    """The status as a table with a line per gap under each assignment."""
    n = len(status["students"])
    header = ["assignment", "due", "released", *(HEADINGS[s] for s in STAGES)]
    rows = []
    for row in status["assignments"]:
        released = {None: "?", True: "yes", False: "no"}[row["released"]]
        cells = [row["name"], row["duedate"] or "-", released]
        cells += ["?" if row["stages"][s] is None else f"{row['stages'][s]['count']}/{n}" for s in STAGES]
        rows.append(cells)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"course {status['course_id']}: {n} student(s); gradebook {status['gradebook']}"]
    if not status["exchange_found"]:
        lines.append(f"exchange {status['exchange']} not found: released, submitted and feedback "
                     "released are unknown (?); set c.Exchange.root in nbgrader_config.py")
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for cells, row in zip(rows, status["assignments"]):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip())
        for stage in STAGES:
            found = row["stages"][stage]
            if found and found["missing"]:
                lines.append(f"    not {HEADINGS[stage]}: {', '.join(found['missing'])}")
        if row["late"]:
            lines.append("    late: " + ", ".join(f"{s} ({_duration(t)})" for s, t in sorted(row["late"].items())))
        if row["resubmitted"]:
            lines.append(f"    submitted more than once: {', '.join(row['resubmitted'])}")
        if row["needs_manual_grade"]:
            lines.append(f"    needs manual grading: {', '.join(row['needs_manual_grade'])}")
        if row["stale_feedback"]:
            lines.append(f"    feedback changed since released: {', '.join(row['stale_feedback'])}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_status(args: argparse.Namespace) -> int:
    try:
        settings = nbgrader_settings(args.course_dir or default_course_dir(), args.exchange)
        db_url = args.db or f"sqlite:///{settings.course_dir / 'gradebook.db'}"
        status = course_status(settings, db_url)
    except CourseLoopError as exc:
        return _fail(str(exc))
    print(json.dumps(status, indent=2) if args.json else status_table(status))
    return 0


# ---------------------------------------------------------------- commands

def add_commands(subparsers) -> None:
    """Add ``feedback`` and ``status`` to the command line's ``subparsers``;
    each sets ``run``, a function of the parsed arguments returning the exit code."""
    feedback = subparsers.add_parser(
        "feedback", help="put the kit's reports into nbgrader's feedback, for release_feedback",
        description="Put each OUT/<student>/report.html into feedback/<student>/ASSIGNMENT/<notebook>.html "
                    "of the course directory (inside nbgrader's feedback page where generate_feedback "
                    "made one), so `nbgrader release_feedback` and the students' `nbgrader "
                    "fetch_feedback` deliver it. Run it after `nbgrader generate_feedback`. Exit "
                    "codes: 0 all placed, 1 some students skipped (each named, with why), 2 bad input.",
    )
    options.add_batch(feedback, help="the batch's output folder (autograder grade --output-dir)")
    options.add_assignment(feedback)
    options.add_course_dir(feedback)
    feedback.set_defaults(run=run_feedback)

    status = subparsers.add_parser(
        "status", help="per assignment: who submitted, was collected, graded and got feedback",
        description="Read nbgrader's gradebook and the course and exchange folders and show, per "
                    "assignment, how many students are at each step and who is missing. Exit codes: "
                    "0 shown, 2 when the gradebook is missing or cannot be read.",
    )
    options.add_course_dir(status)
    status.add_argument("--db", metavar="DB_URL",
                        help="the gradebook (default: sqlite:///<course-dir>/gradebook.db)")
    status.add_argument("--exchange", type=Path, metavar="DIR",
                        help="nbgrader's exchange root (default: c.Exchange.root from nbgrader_config.py)")
    status.add_argument("--json", action="store_true", help="print the status as JSON for scripts")
    status.set_defaults(run=run_status)
