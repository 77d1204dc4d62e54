"""Stage 1, prepare: the notebook that will run, built from the student's
answers and the instructor's everything-else.

Pure transforms on notebooks; no execution and no storage. The roles of cells
come from the instructor's source notebook, never from the submission's
metadata, so a student cannot turn a test cell into an answer cell.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

HIDDEN_TESTS = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*$.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?",
    re.MULTILINE | re.DOTALL,
)


class SubmissionError(Exception):
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
        notebook = nbformat.reads(text, as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as exc:
        raise SubmissionError(
            f"{path}: not valid notebook JSON ({exc}). Re-save the notebook from "
            "Jupyter, or download it again with File > Download."
        ) from None
    except Exception as exc:  # nbformat raises several types for malformed notebooks
        raise SubmissionError(f"{path}: not a readable notebook ({exc}).") from None
    if not isinstance(notebook.get("cells"), list):
        raise SubmissionError(f"{path}: the notebook has no list of cells.")
    return notebook


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
                notes.append(f"Cell id {gid!r} appears more than once; the first copy was graded.")
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
