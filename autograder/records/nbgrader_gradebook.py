"""Results into nbgrader's gradebook, so ``nbgrader export`` and the
formgrader show them as if ``nbgrader autograde`` had run.

nbgrader scores graded cells, not checks. Each graded cell of a source
notebook holds a hidden region that calls
``autograder.nbgrader_bridge.check("NAME", "CHECK", globals())``; parsing
those calls maps every check to its cell, and a cell's ``auto_score`` is the
points of the checks it calls. Everything goes through nbgrader's public
:class:`nbgrader.api.Gradebook`: the assignment, its notebook and cells are
created from the source notebook's nbgrader metadata when the database does
not have them yet (as ``nbgrader generate_assignment`` would), and left as
they are when it does.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.course import Assignment, default_course_dir
from autograder.records.common import RecordsError, RecordsWarning
from autograder.results import GradingResult

HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS\n?(.*?)### END HIDDEN TESTS", re.S)
_CHECK_CALL = re.compile(r"""\bcheck\(\s*(['"])[^'"]*\1\s*,\s*(['"])([^'"]+)\2""")
DEFAULT_COURSE_ID = "default_course"
"""nbgrader's own default, used when the course directory sets none."""


def default_db_url(course_dir: Path) -> str:
    """nbgrader's default database: ``sqlite:///<course_dir>/gradebook.db``."""
    return f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"


def course_id(course_dir: Path) -> str:
    """``c.CourseDirectory.course_id`` from the course's ``nbgrader_config.py``
    (read the way nbgrader reads it), else nbgrader's default."""
    config_file = Path(course_dir) / "nbgrader_config.py"
    if not config_file.is_file():
        return DEFAULT_COURSE_ID
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    value = config.get("CourseDirectory", {}).get("course_id")
    return value if isinstance(value, str) and value else DEFAULT_COURSE_ID


# ------------------------------------------------------ source notebook -> cells

def hidden_checks(source: str) -> list[str]:
    """The checks that a cell's hidden regions run: the second argument of
    every ``check(...)`` (or ``module.check(...)``) call, in order."""
    found = []
    for region in HIDDEN_REGION.findall(source):
        try:
            tree = ast.parse(region)
        except SyntaxError:  # IPython magics, say: fall back to the call's text
            found.extend(m.group(3) for m in _CHECK_CALL.finditer(region))
            continue
        calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)),
                       key=lambda n: (n.lineno, n.col_offset))
        for call in calls:
            name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
            if (name == "check" and len(call.args) >= 2 and isinstance(call.args[1], ast.Constant)
                    and isinstance(call.args[1].value, str)):
                found.append(call.args[1].value)
    return found


@dataclass(frozen=True)
class GradeCell:
    grade_id: str
    max_score: float
    cell_type: str
    checks: tuple[str, ...]


@dataclass
class NotebookLayout:
    """What the gradebook needs to know about one source notebook."""

    grade_cells: list[GradeCell] = field(default_factory=list)
    solution_cells: list[str] = field(default_factory=list)
    task_cells: list[GradeCell] = field(default_factory=list)
    source_cells: list[dict] = field(default_factory=list)
    """``{"grade_id", "cell_type", "locked", "source", "checksum"}`` per cell nbgrader tracks."""
    kernelspec: dict = field(default_factory=dict)

    def check_to_cell(self) -> dict[str, str]:
        return {check: cell.grade_id for cell in self.grade_cells for check in cell.checks}


def notebook_layout(source_nb, release_nb=None) -> NotebookLayout:
    """The graded, answer, task and tracked cells of a source notebook (an
    nbformat notebook), with the checks each graded cell calls. Source text and
    checksums of tracked cells come from the release notebook where given, as
    ``nbgrader generate_assignment`` records them."""
    released = {}
    for cell in (release_nb.cells if release_nb is not None else []):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id"):
            released[meta["grade_id"]] = cell
    layout = NotebookLayout(kernelspec=dict(source_nb.metadata.get("kernelspec", {})))
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if not grade_id:
            continue
        is_task = bool(meta.get("task"))
        if meta.get("grade") and not is_task:
            layout.grade_cells.append(GradeCell(grade_id, float(meta.get("points", 0)), cell.cell_type,
                                                tuple(hidden_checks(cell.source))))
        if is_task:
            layout.task_cells.append(GradeCell(grade_id, float(meta.get("points", 0)), cell.cell_type, ()))
        if meta.get("solution"):
            layout.solution_cells.append(grade_id)
        if meta.get("grade") or meta.get("solution") or meta.get("locked") or is_task:
            shown = released.get(grade_id, cell)
            layout.source_cells.append({
                "grade_id": grade_id, "cell_type": cell.cell_type, "locked": bool(meta.get("locked")),
                "source": shown.source,
                "checksum": shown.metadata.get("nbgrader", {}).get("checksum"),
            })
    return layout


def cell_scores(result: GradingResult, layout: NotebookLayout) -> tuple[dict[str, float | None], list[str]]:
    """Each graded cell's ``auto_score`` for ``result`` and what did not fit.

    A cell scores the points of the checks it calls, at most its own points.
    A cell whose checks are all missing from the result scores ``None``
    (nbgrader then asks for a manual grade); checks that no cell calls are
    reported, since nbgrader would not count them.
    """
    earned = {t.name: t.score for t in result.tests}
    scores: dict[str, float | None] = {}
    problems = []
    who = f"{result.student or result.submission} ({result.assignment})"
    for cell in layout.grade_cells:
        present = [c for c in cell.checks if c in earned]
        missing = [c for c in cell.checks if c not in earned]
        if not present:
            scores[cell.grade_id] = None
            problems.append(f"{who}: graded cell {cell.grade_id!r} calls "
                            f"{', '.join(cell.checks) or 'no check'}, which the result does not "
                            "have; it is left for a manual grade.")
            continue
        if missing:
            problems.append(f"{who}: graded cell {cell.grade_id!r} also calls {', '.join(missing)}, "
                            "which the result does not have; scored from the others.")
        total = sum(earned[c] for c in present)
        scores[cell.grade_id] = round(min(max(total, 0.0), cell.max_score), 4)
    called = layout.check_to_cell()
    for name in earned:
        if name not in called:
            problems.append(f"{who}: no graded cell of the source notebook calls check {name!r}; "
                            "its points are not in the gradebook.")
    return scores, problems


# -------------------------------------------------------------- the database

def _ensure_structure(gradebook, name: str, layout: NotebookLayout) -> None:
    """Create the assignment, its notebook and its cells where missing."""
    from nbgrader.api import MissingEntry

    gradebook.update_or_create_assignment(name)
    try:
        notebook = gradebook.find_notebook(name, name)
    except MissingEntry:
        notebook = gradebook.add_notebook(name, name, kernelspec=json.dumps(layout.kernelspec))
    have = {c.name for c in notebook.grade_cells} | {c.name for c in notebook.task_cells}
    missing = [c.grade_id for c in layout.grade_cells + layout.task_cells if c.grade_id not in have]
    if missing and notebook.submissions:
        raise RecordsError(
            f"The gradebook's notebook {name!r} lacks the graded cell(s) {', '.join(missing)} that "
            f"solutions/{name}/{name}.ipynb has, and already holds submissions, to which nbgrader "
            "cannot add cells. Record into a fresh database (--gradebook sqlite:///new.db), or "
            f"remove the assignment (`nbgrader db assignment remove {name}`) and record again."
        )
    for cell in layout.grade_cells:
        if cell.grade_id not in have:
            gradebook.add_grade_cell(cell.grade_id, name, name, max_score=cell.max_score,
                                     cell_type=cell.cell_type)
    for cell in layout.task_cells:
        if cell.grade_id not in have:
            gradebook.add_task_cell(cell.grade_id, name, name, max_score=cell.max_score,
                                    cell_type=cell.cell_type)
    solutions = {c.name for c in notebook.solution_cells}
    for grade_id in layout.solution_cells:
        if grade_id not in solutions:
            gradebook.add_solution_cell(grade_id, name, name)
    sources = {c.name for c in notebook.source_cells}
    for cell in layout.source_cells:
        if cell["grade_id"] not in sources:
            info = {k: v for k, v in cell.items() if k != "grade_id"}
            gradebook.add_source_cell(cell["grade_id"], name, name, **info)


def _layout_for(name: str, course_dir: Path) -> NotebookLayout:
    spec = Assignment(name, course_dir)
    if not spec.source_notebook.is_file():
        raise RecordsError(
            f"Cannot map the checks of {name!r} to nbgrader cells: {spec.source_notebook} does not "
            "exist. Give --course-dir, the nbgrader course directory whose solutions/ holds the "
            "assignment's source notebook."
        )
    source = nbformat.read(spec.source_notebook, as_version=4)
    release = (nbformat.read(spec.release_notebook, as_version=4)
               if spec.release_notebook.is_file() else None)
    return notebook_layout(source, release)


@contextlib.contextmanager
def _tools_on_path():
    """nbgrader creates a new gradebook by running the ``alembic`` command by
    name; put this Python's scripts first on PATH so an unactivated virtual
    environment works."""
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{saved}"
    try:
        yield
    finally:
        os.environ["PATH"] = saved


def _submission_time(result: GradingResult, problems: list[str]):
    """When ``result``'s notebook was submitted, parsed as nbgrader parses its
    ``timestamp.txt`` (so the gradebook's lateness is nbgrader's own), or
    ``None``; a time that cannot be read is reported in ``problems``."""
    from nbgrader.utils import parse_utc

    if not result.submitted_at:
        return None
    try:
        return parse_utc(result.submitted_at)
    except (ValueError, OverflowError):
        problems.append(f"{result.student} ({result.assignment}): the submission time "
                        f"{result.submitted_at!r} (its timestamp.txt) is not a date nbgrader can "
                        "read; the gradebook keeps the time it had, so lateness may be missing.")
        return None


def write_gradebook(db_url: str | None, results: list[GradingResult], *,
                    course_dir: Path | None = None, course: str | None = None) -> list[str]:
    """Record ``results`` in nbgrader's gradebook at ``db_url``.

    ``db_url`` defaults to ``sqlite:///<course_dir>/gradebook.db`` and
    ``course`` (nbgrader's course id) to the course's ``nbgrader_config.py``.
    Each result needs a student. Its submission time (``submitted_at``, from
    the collected ``timestamp.txt``) becomes the submission's timestamp, from
    which nbgrader computes lateness and the late penalty. Recording again
    updates the scores; manual scores that graders gave stay and win, as with
    ``nbgrader autograde``.
    Returns what did not fit (also issued as :class:`RecordsWarning`).
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SQLAlchemyError

    course_dir = Path(course_dir).resolve() if course_dir else default_course_dir()
    db_url = db_url or default_db_url(course_dir)
    course = course or course_id(course_dir)
    unnamed = [r.submission for r in results if not r.student]
    if unnamed:
        raise RecordsError(f"nbgrader records grades per student, but no student is recorded for "
                           f"{', '.join(unnamed)}. Grade them as a batch (one folder per student).")
    layouts = {name: _layout_for(name, course_dir) for name in sorted({r.assignment for r in results})}
    problems: list[str] = []
    try:
        with _tools_on_path():
            gradebook = Gradebook(db_url, course_id=course)
    except (SQLAlchemyError, OSError) as exc:
        raise RecordsError(f"Cannot open the gradebook {db_url}: {exc}. Give a database URL such as "
                           "sqlite:////path/to/course/gradebook.db (the folder must exist).") from exc
    with gradebook:
        for name, layout in layouts.items():
            _ensure_structure(gradebook, name, layout)
        for result in results:
            layout = layouts[result.assignment]
            gradebook.update_or_create_student(result.student)
            submitted = _submission_time(result, problems)
            gradebook.update_or_create_submission(result.assignment, result.student,
                                                  **({"timestamp": submitted} if submitted else {}))
            scores, found = cell_scores(result, layout)
            problems.extend(found)
            for grade_id, score in scores.items():
                try:
                    grade = gradebook.find_grade(grade_id, result.assignment, result.assignment,
                                                 result.student)
                except MissingEntry as exc:
                    raise RecordsError(
                        f"The gradebook has no grade of cell {grade_id!r} for {result.student}'s "
                        f"{result.assignment}: the submission predates that cell. Remove it "
                        f"(`nbgrader db assignment remove {result.assignment}`) and record again."
                    ) from exc
                grade.auto_score = score
                grade.needs_manual_grade = grade.manual_score is not None or score is None
            gradebook.db.commit()
    for problem in problems:
        warnings.warn(problem, RecordsWarning, stacklevel=2)
    return problems
