"""Stage 1, prepare: the notebook that will run, built from the student's
answers and the instructor's everything-else.

Pure transforms on notebooks; no execution and no storage. The roles of cells
come from the instructor's source notebook, never from the submission's
metadata, so a student cannot turn a test cell into an answer cell.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from pathlib import Path

import nbformat
from nbformat.warnings import DuplicateCellId

from autograder.errors import StopGrading

HIDDEN_TESTS = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*$.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?",
    re.MULTILINE | re.DOTALL,
)


class SubmissionError(StopGrading):
    """The submission file cannot be read as a notebook."""


def read_submission(path: Path) -> nbformat.NotebookNode:
    """Read a student's notebook, with an error that says what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SubmissionError(f"{path}: no such file.") from None
    except UnicodeDecodeError:
        raise SubmissionError(
            f"{path}: not a text file, so not a notebook. Submit the .ipynb file "
            "saved from Jupyter."
        ) from None
    try:
        with warnings.catch_warnings():
            # Duplicated cell ids are repaired on reading; merge() reports duplicated grade_ids.
            warnings.simplefilter("ignore", DuplicateCellId)
            notebook = nbformat.reads(text, as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as exc:
        if not text.lstrip().startswith(("{", "[")):
            raise SubmissionError(
                f"{path}: not valid notebook JSON: the file holds plain text (Python code or an "
                "export?), not a notebook. Submit the .ipynb file itself, saved from Jupyter "
                "(File > Save), not a .py or other export renamed to .ipynb."
            ) from None
        raise SubmissionError(
            f"{path}: not valid notebook JSON ({exc}). Re-save the notebook from "
            "Jupyter, or download it again with File > Download."
        ) from None
    except Exception as exc:  # nbformat raises several types for malformed notebooks
        raise SubmissionError(f"{path}: not a readable notebook ({exc}).") from None
    if not isinstance(notebook.get("cells"), list):
        raise SubmissionError(f"{path}: the notebook has no list of cells.")
    if not notebook.cells:
        raise SubmissionError(
            f"{path}: the notebook is empty (it has no cells). Open it in Jupyter, check that "
            "your work is there, save it and submit it again."
        )
    return notebook


ALIAS_VARIABLE = "LEADERBOARD_ALIAS"
MAX_ALIAS_LENGTH = 40


def declared_alias(notebook) -> str:
    """The leaderboard name the student set in a code cell as
    ``LEADERBOARD_ALIAS = "..."`` (the last such assignment of a string),
    read from the source without running it; control characters dropped,
    white space folded, at most :data:`MAX_ALIAS_LENGTH` characters. ``""``
    when there is none."""
    alias = ""
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(cell.get("source", ""))
        except (SyntaxError, ValueError):  # IPython magics, unfinished code
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id == ALIAS_VARIABLE
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                alias = node.value.value
    printable = "".join(ch if ch.isprintable() else " " for ch in alias)
    return " ".join(printable.split())[:MAX_ALIAS_LENGTH]


def _normalised(source) -> str:
    return " ".join(str(source).split())


def _matching_locked_cells(submission, release) -> int:
    """How many of the submission's cells carry the grade_id and the exact text
    (up to whitespace) of a locked, non-answer cell of ``release``."""
    locked = {
        grade_id(c): _normalised(c.get("source", ""))
        for c in release.cells if grade_id(c) and not is_answer(c)
    }
    return sum(
        1 for c in submission.cells
        if grade_id(c) in locked and _normalised(c.get("source", "")) == locked[grade_id(c)]
    )


def check_assignment(submission, release_path: Path) -> None:
    """Raise :class:`SubmissionError` when ``submission`` is recognisably the
    notebook of another assignment of the course: none of its fixed cells is
    one of this assignment's release, and some are another release's (found
    beside it, ``assignments/NAME/NAME.ipynb``). Such a notebook is not run:
    none of its work belongs to this assignment."""
    release_path = Path(release_path)
    release = nbformat.read(release_path, as_version=4)
    if _matching_locked_cells(submission, release):
        return
    best, best_count = None, 0
    for other in sorted(release_path.parent.parent.glob("*/*.ipynb")):
        if other.resolve() == release_path.resolve() or other.stem != other.parent.name:
            continue
        try:
            count = _matching_locked_cells(submission, nbformat.read(other, as_version=4))
        except Exception:  # an unreadable release is not this check's business
            continue
        if count > best_count:
            best, best_count = other.stem, count
    if best is not None:
        raise SubmissionError(
            f"This is not the {release_path.stem} notebook: it is the {best} notebook "
            f"({best_count} of its fixed cells are {best}'s, none is {release_path.stem}'s). "
            f"Submit the notebook of {release_path.stem}."
        )


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_answer(cell) -> bool:
    """Answer cells are the ones a student is meant to edit."""
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def strip_hidden_tests(cell) -> nbformat.NotebookNode:
    """A copy of ``cell`` without its hidden-test regions: in the CLI path the
    hidden suite runs outside the kernel, so those calls must not run inside."""
    clean = nbformat.from_dict(json.loads(json.dumps(cell)))
    clean.source = HIDDEN_TESTS.sub("", clean.source)
    return clean


def merge(source, submission, release) -> tuple[nbformat.NotebookNode, list[str]]:
    """The notebook to run, and notes on what was restored or ignored.

    - Answer cells come from the submission, matched by nbgrader ``grade_id``;
      an answer cell the student deleted comes back as the release stub.
    - Every other cell of the source (instructions, set-up, tests) comes from
      the source, so edited or deleted test cells do not count.
    - Cells the student added stay, after the source cell they followed.
    - A ``grade_id`` used twice in the submission: the first copy is the answer.
    """
    source_ids = {grade_id(c) for c in source.cells if grade_id(c)}
    stubs = {grade_id(c): c for c in release.cells if grade_id(c)}
    found: dict[str, nbformat.NotebookNode] = {}
    extras: dict[str | None, list] = {}
    anchor = None
    notes = []
    for cell in submission.cells:
        gid = grade_id(cell)
        if gid in source_ids and gid not in found:
            found[gid] = cell
            anchor = gid
        else:
            if gid in found:
                notes.append(
                    f"Cell id {gid!r} appears more than once: the first copy was taken as that "
                    "cell, the other copies ran as extra cells after it (what they define "
                    "replaces what the first defined)."
                )
            if cell.get("cell_type") == "code":
                extra = nbformat.v4.new_code_cell(cell.get("source", ""))
            else:
                extra = nbformat.v4.new_markdown_cell(cell.get("source", ""))
            extras.setdefault(anchor, []).append(extra)

    cells = list(extras.get(None, []))
    for cell in source.cells:
        gid = grade_id(cell)
        if is_answer(cell):
            chosen = found.get(gid)
            if chosen is None:
                notes.append(f"Answer cell {gid!r} is missing from the submission; it was graded as blank.")
                chosen = stubs.get(gid, cell)
            # Keep the student's code, but the instructor's metadata and cell type.
            answer = strip_hidden_tests(cell)
            answer.source = chosen.get("source", "")
            cells.append(answer)
        else:
            if gid and gid not in found:
                notes.append(f"Cell {gid!r} was deleted from the submission; the instructor's version was restored.")
            elif gid and _differs(strip_hidden_tests(found[gid]).source, stubs.get(gid, cell).get("source", "")):
                notes.append(f"Cell {gid!r} was edited; the instructor's version was used instead.")
            cells.append(strip_hidden_tests(cell))
        cells.extend(extras.get(gid, []) if gid else [])

    if submission.cells and not found and not any(grade_id(c) for c in submission.cells):
        notes.insert(0, (
            "None of your notebook's cells carries this assignment's cell ids (the notebook "
            "was not made from the released one, or its metadata was removed), so no answer "
            "cell was found: your cells ran before the instructor's. Copy your answers into "
            "the released notebook's answer cells."
        ))
    merged = nbformat.v4.new_notebook(cells=cells, metadata=source.metadata)
    return merged, notes


def _differs(submitted: str, released: str) -> bool:
    """Whether a locked cell was edited; nbgrader trims the whitespace that a
    removed hidden-test region leaves behind, so trailing whitespace is ignored."""
    return submitted.rstrip() != released.rstrip()


def prepare(source_path: Path, submission, release_path: Path):
    """Read the instructor's notebooks and merge ``submission`` into them."""
    source = nbformat.read(source_path, as_version=4)
    release = nbformat.read(release_path, as_version=4)
    return merge(source, submission, release)
