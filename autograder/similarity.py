"""``autograder similarity``: pairs of submissions whose answers look copied.

Only the answer cells count (nbgrader ``solution`` code cells, found by the
``grade_id`` of the release notebook's answer cells, never by the
submission's own metadata), and in them only what the student wrote: a line
that is also a line of the release's answer cell (the starter code,
``# YOUR CODE HERE``, ``raise NotImplementedError()``) is left out, so two
blank submissions share nothing.

The method is winnowing (Schleimer, Wilkerson and Aiken, "Winnowing: local
algorithms for document fingerprinting", SIGMOD 2003), on Python tokens:

1. :func:`normalise` turns a cell into tokens that survive the usual
   disguises: comments and whitespace go, identifiers become one placeholder,
   string and number literals become one placeholder each.
2. :func:`kgrams` hashes every run of ``k`` consecutive tokens.
3. :func:`winnow` keeps the smallest hash of every window of ``w``
   consecutive k-gram hashes: the fingerprints. Any run of at least
   ``w + k - 1`` tokens shared by two answers shares a fingerprint.
4. :func:`compare` scores a pair by the Jaccard index of their fingerprint
   sets.

Nothing is deducted: the command writes ``similarity.csv`` and
``similarity.html`` (the pairs at or above a threshold, most similar first,
with the matching lines side by side) for an instructor to judge.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import keyword
import sys
import tokenize
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import nbformat

from autograder import options
from autograder.course import CourseError, load_assignment
from autograder.engine.batch import NoSubmissionsError, discover
from autograder.engine.prepare import (
    SubmissionError,
    check_assignment,
    grade_id,
    is_answer,
    read_submission,
)
from autograder.atomic import write_atomic
from autograder.feedback._page import esc, page
from autograder.records.common import RecordsError, load_results

KGRAM = 5
"""Tokens per k-gram. The answers of these notebooks are short (a whole
answer is often one line of 10 to 20 tokens), so k must be small for them
to have fingerprints at all; 5 tokens is about one call with its arguments."""

WINDOW = 4
"""Winnowing window: every shared run of ``WINDOW + KGRAM - 1`` = 8 tokens or
more is guaranteed to share a fingerprint, about one short statement."""

DEFAULT_THRESHOLD = 0.5
"""Pairs with a similarity at or above this are flagged."""

IDENTIFIER = "V"
STRING = "S"
NUMBER = "N"

_DROPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
# Python 3.12 splits an f-string into start, middle and end tokens; 3.11 has one STRING.
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)

CSV_COLUMNS = ("student_a", "student_b", "similarity", "matching_lines")


@dataclass(frozen=True)
class Token:
    """One normalised token and the line (1-based, in its cell) it came from."""

    text: str
    line: int


@dataclass(frozen=True)
class Fingerprint:
    """A hashed k-gram: its hash, the answer cell it is in and the lines of
    that cell its tokens come from."""

    hash: int
    cell: str
    lines: tuple[int, ...]


@dataclass
class StudentAnswers:
    """One submission's answer cells, their k-grams and their fingerprints."""

    student: str
    path: Path
    cells: dict[str, str]
    """grade_id -> the student's source of that answer cell, in the release's order."""
    starter_lines: dict[str, set[int]]
    """grade_id -> lines left out because the release's answer cell has them."""
    kgrams: list[Fingerprint]
    """Every k-gram: what the matching lines shown to the instructor are found with."""
    fingerprints: list[Fingerprint]
    """The k-grams winnowing selected: what the similarity is computed on."""

    @property
    def hashes(self) -> set[int]:
        """The fingerprint set."""
        return {f.hash for f in self.fingerprints}

    def to_dict(self) -> dict:
        return {"student": self.student, "submission": str(self.path),
                "answer_cells": list(self.cells), "fingerprints": len(self.hashes)}


@dataclass(frozen=True)
class Skipped:
    """A submission that could not be compared, and why."""

    student: str
    path: Path
    reason: str

    def to_dict(self) -> dict:
        return {"student": self.student, "submission": str(self.path), "reason": self.reason}


@dataclass
class SimilarPair:
    """Two students' answers compared. ``student_a`` sorts before ``student_b``."""

    student_a: str
    student_b: str
    similarity: float
    """Jaccard index of the two fingerprint sets, 0 to 1."""
    lines_a: dict[str, list[int]]
    """grade_id -> lines of student_a's answers that hold a k-gram student_b's answers also have."""
    lines_b: dict[str, list[int]]

    @property
    def matching_lines(self) -> int:
        """Lines that hold shared code, counted on the side that has more of
        them: reformatting can spread the same code over more lines, and the
        larger count is the one the instructor will see highlighted."""
        return max(sum(map(len, self.lines_a.values())), sum(map(len, self.lines_b.values())))

    def to_dict(self) -> dict:
        return {"student_a": self.student_a, "student_b": self.student_b,
                "similarity": round(self.similarity, 4), "matching_lines": self.matching_lines,
                "lines_a": self.lines_a, "lines_b": self.lines_b}


@dataclass
class SimilarityReport:
    """Every pair of an assignment's submissions compared; the flagged ones kept."""

    assignment: str
    threshold: float
    answers: list[StudentAnswers]
    flagged: list[SimilarPair]
    """Pairs at or above ``threshold``, most similar first."""
    skipped: list[Skipped] = field(default_factory=list)
    pairs_compared: int = 0
    kgram: int = KGRAM
    window: int = WINDOW

    def to_dict(self) -> dict:
        return {
            "assignment": self.assignment, "threshold": self.threshold, "metric": "jaccard",
            "kgram": self.kgram, "window": self.window, "pairs_compared": self.pairs_compared,
            "compared": [a.to_dict() for a in self.answers],
            "flagged": [p.to_dict() for p in self.flagged],
            "skipped": [s.to_dict() for s in self.skipped],
        }


# --- the algorithm: pure functions ---------------------------------------------------------

def _python_tokens(source: str) -> Iterator[tokenize.TokenInfo]:
    """``tokenize``'s tokens of ``source``, with line numbers of ``source``.

    A student's cell need not be valid Python (a syntax error, an unclosed
    bracket, an IPython ``!command``). Where tokenizing stops with an error,
    the tokens read so far are kept and tokenizing starts again on the next
    line, so the rest of the cell still counts.
    """
    lines = source.splitlines(keepends=True)
    first = 0
    while first < len(lines):
        resume = first + 1
        try:
            for token in tokenize.generate_tokens(iter(lines[first:]).__next__):
                resume = max(resume, first + token.end[0])
                yield token._replace(start=(first + token.start[0], token.start[1]),
                                     end=(first + token.end[0], token.end[1]))
            return
        except (tokenize.TokenError, SyntaxError):
            first = resume


def normalise(source: str, *, skip_lines: set[int] = frozenset()) -> list[Token]:
    """The tokens of ``source`` that say what the code does, not how it looks.

    - Comments, line breaks and indentation are dropped, so re-commenting and
      re-spacing change nothing.
    - Keywords (``for``, ``def``, ``None``) and operators are kept as written.
    - Identifiers become ``V``: renaming variables, functions or the alias of
      an import (``import numpy as np``) changes nothing.
    - Attribute names, a name right after a ``.`` (``keras.layers.Dense``,
      ``model.fit``, ``x.mean``), are kept. They are the library's names, not
      the student's, so someone disguising a copy cannot rename them; and in
      a course where everyone calls the same few functions they are what
      tells ``x.mean(axis=0)`` from ``x.min(axis=0)``, which keeps two
      independent answers apart.
    - String literals (f-strings included) become ``S`` and numbers ``N``:
      changing a message or a hyperparameter does not hide a copy.

    Tokens on ``skip_lines`` (1-based) are left out.
    """
    tokens: list[Token] = []
    previous = ""
    fstring_depth = 0
    for token in _python_tokens(source):
        kind, text, line = token.type, token.string, token.start[0]
        if fstring_depth:  # inside an f-string (3.12+): the whole literal is one S
            fstring_depth += (kind == _FSTRING_START) - (kind == _FSTRING_END)
            continue
        if kind in _DROPPED or not text.strip():
            continue
        if kind == _FSTRING_START:
            fstring_depth, text = 1, STRING
        elif kind == tokenize.NAME and not keyword.iskeyword(text) and previous != ".":
            text = IDENTIFIER
        elif kind == tokenize.STRING:
            text = STRING
        elif kind == tokenize.NUMBER:
            text = NUMBER
        previous = token.string
        if line not in skip_lines:
            tokens.append(Token(text, line))
    return tokens


HashedGram = tuple[int, tuple[int, ...]]
"""A k-gram as (hash, the lines its tokens are on)."""


def _hash(texts) -> int:
    # hashlib rather than hash(): str hashes change from one Python process to the next.
    return int.from_bytes(hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).digest(), "big")


def kgrams(tokens: list[Token], k: int = KGRAM) -> list[HashedGram]:
    """Every run of ``k`` consecutive tokens as (hash, lines its tokens are on).

    Fewer than ``k`` tokens give no k-gram: an answer that short (``x = 1``)
    is what anyone would write.
    """
    return [
        (_hash(t.text for t in tokens[i:i + k]), tuple(sorted({t.line for t in tokens[i:i + k]})))
        for i in range(len(tokens) - k + 1)
    ]


def winnow(grams: list[HashedGram], window: int = WINDOW) -> list[HashedGram]:
    """The k-grams winnowing selects: in every window of ``window`` consecutive
    k-grams, the one with the smallest hash (the rightmost on a tie), each
    selected position once, in order. Fewer k-grams than a window: the
    smallest of them."""
    selected: dict[int, HashedGram] = {}
    for start in range(max(len(grams) - window + 1, 1) if grams else 0):
        span = grams[start:start + window]
        position = start + min(range(len(span)), key=lambda j: (span[j][0], -j))
        selected[position] = grams[position]
    return [selected[p] for p in sorted(selected)]


def starter_code(release) -> dict[str, str]:
    """grade_id -> source of each answer code cell of the release notebook, in order.

    Only code cells: a written (markdown) answer is prose, and its Python
    tokens would be noise.
    """
    return {grade_id(c): c.get("source", "") for c in release.cells
            if is_answer(c) and grade_id(c) and c.get("cell_type") == "code"}


def answer_cells(notebook, starter: dict[str, str]) -> dict[str, str]:
    """grade_id -> the submission's source for each answer cell in ``starter``.

    The first cell with a grade_id is the answer, as grading takes it; a
    deleted answer cell is absent.
    """
    found: dict[str, str] = {}
    for cell in notebook.cells:
        gid = grade_id(cell)
        if gid in starter and gid not in found:
            found[gid] = str(cell.get("source", ""))
    return {gid: found[gid] for gid in starter if gid in found}


def _squeezed(line: str) -> str:
    return "".join(line.split())


def starter_lines(source: str, starter_source: str) -> set[int]:
    """Lines (1-based) of ``source`` that are, up to whitespace, a line of the
    release's answer cell: given to every student, so they show nothing."""
    given = {_squeezed(line) for line in starter_source.splitlines()} - {""}
    return {n for n, line in enumerate(source.splitlines(), start=1) if _squeezed(line) in given}


def fingerprint_answers(student: str, path: Path, cells: dict[str, str], starter: dict[str, str], *,
                        k: int = KGRAM, window: int = WINDOW) -> StudentAnswers:
    """A student's answers with their fingerprints, starter lines left out.

    Each cell is fingerprinted on its own (a k-gram never spans two cells),
    and the fingerprints of all cells form one set: code copied into another
    answer cell still matches.
    """
    left_out = {gid: starter_lines(source, starter.get(gid, "")) for gid, source in cells.items()}
    every, selected = [], []
    for gid, source in cells.items():
        grams = kgrams(normalise(source, skip_lines=left_out[gid]), k)
        every += [Fingerprint(digest, gid, lines) for digest, lines in grams]
        selected += [Fingerprint(digest, gid, lines) for digest, lines in winnow(grams, window)]
    return StudentAnswers(student, Path(path), dict(cells), left_out, every, selected)


def _shared_lines(answers: StudentAnswers, shared: set[int]) -> dict[str, list[int]]:
    lines: dict[str, set[int]] = {}
    for gram in answers.kgrams:
        if gram.hash in shared:
            lines.setdefault(gram.cell, set()).update(gram.lines)
    return {gid: sorted(lines[gid]) for gid in answers.cells if gid in lines}


def compare(a: StudentAnswers, b: StudentAnswers) -> SimilarPair:
    """The similarity of two students' answers: the Jaccard index of their
    fingerprint sets, |A ∩ B| / |A ∪ B|.

    Jaccard rather than containment (|A ∩ B| / min(|A|, |B|)): a student who
    answered one cell with the line everyone writes (``x.mean(axis=0)``) is
    wholly contained in every complete submission, and containment would
    flag them with every classmate. Jaccard is high only when most of both
    students' code is shared. Two answers with no fingerprints score 0:
    nothing written, nothing copied.

    The matching lines are found with every k-gram, not only the
    fingerprints: winnowing keeps about one k-gram in ``(w + 1) / 2``, enough
    to measure how much is shared but not to show every line of it.
    """
    if a.student > b.student:
        a, b = b, a
    ha, hb = a.hashes, b.hashes
    shared = ha & hb
    similarity = len(shared) / len(ha | hb) if shared else 0.0
    both = {g.hash for g in a.kgrams} & {g.hash for g in b.kgrams}
    return SimilarPair(a.student, b.student, similarity, _shared_lines(a, both), _shared_lines(b, both))


def flag_pairs(answers: list[StudentAnswers], threshold: float = DEFAULT_THRESHOLD) -> list[SimilarPair]:
    """Every pair compared; those at or above ``threshold`` (and sharing
    something), most similar first, then most matching lines, then by name."""
    pairs = [compare(a, b) for a, b in combinations(answers, 2)]
    flagged = [p for p in pairs if p.similarity > 0 and p.similarity >= threshold]
    return sorted(flagged, key=lambda p: (-p.similarity, -p.matching_lines, p.student_a, p.student_b))


# --- outputs ---------------------------------------------------------------------------------

def to_csv(report: SimilarityReport) -> str:
    """The flagged pairs as CSV: ``student_a, student_b, similarity, matching_lines``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for pair in report.flagged:
        writer.writerow([pair.student_a, pair.student_b, f"{pair.similarity:.3f}", pair.matching_lines])
    return buffer.getvalue()


def _code_html(source: str, matched: list[int], starter: set[int]) -> str:
    rows = []
    for number, line in enumerate(source.splitlines(), start=1):
        text = esc(line)
        if number in matched:
            text = f"<mark>{text}</mark>"
        elif number in starter:
            text = f'<span class="missing">{text}</span>'
        rows.append(f"{number:3d}  {text}")
    return '<pre style="white-space:pre-wrap;margin:0">' + "\n".join(rows) + "</pre>"


def _pair_html(index: int, pair: SimilarPair, by_student: dict[str, StudentAnswers]) -> str:
    a, b = by_student[pair.student_a], by_student[pair.student_b]
    parts = [f'<h3 id="pair-{index}">{index}. {esc(pair.student_a)} and {esc(pair.student_b)}: '
             f"{pair.similarity:.0%} similar, {pair.matching_lines} matching lines</h3>"]
    cells = [gid for gid in a.cells if gid in pair.lines_a or gid in pair.lines_b]
    cells += [gid for gid in b.cells if gid in pair.lines_b and gid not in cells]
    for gid in cells:
        code_a = _code_html(a.cells.get(gid, ""), pair.lines_a.get(gid, []), a.starter_lines.get(gid, set()))
        code_b = _code_html(b.cells.get(gid, ""), pair.lines_b.get(gid, []), b.starter_lines.get(gid, set()))
        parts.append(
            '<table style="width:100%;table-layout:fixed">'
            f'<tr><th colspan="2">answer cell <code>{esc(gid)}</code></th></tr>'
            f"<tr><th>{esc(pair.student_a)}</th><th>{esc(pair.student_b)}</th></tr>"
            f"<tr><td>{code_a}</td><td>{code_b}</td></tr></table>"
        )
    return "\n".join(parts)


def to_html(report: SimilarityReport) -> str:
    """One self-contained page: the flagged pairs, then each pair's answers
    side by side, shared lines highlighted and starter code greyed. All
    student-written text is escaped; there is no script and no link out."""
    title = f"Similar answers: {report.assignment}"
    parts = [
        f"<header><h1>{esc(title)}</h1>",
        f"<p class=\"meta\">{len(report.answers)} submissions, {report.pairs_compared} pairs compared; "
        f"{len(report.flagged)} pair(s) at or above a similarity of {report.threshold:.0%}. "
        "Similarity is the share of code fingerprints the two students' answer cells have in common "
        f"(Jaccard index of winnowed {report.kgram}-token fingerprints, window {report.window}) after "
        "comments, spacing, names and literals are normalised and the release's starter code is left "
        "out. It points at pairs to read, it proves nothing: short, standard answers are alike by "
        "nature.</p></header>",
        "<h2>Flagged pairs</h2>",
    ]
    if report.flagged:
        parts.append("<table><tr><th class=\"num\">#</th><th>student</th><th>student</th>"
                     "<th>similarity</th><th class=\"num\">matching lines</th></tr>")
        for index, pair in enumerate(report.flagged, start=1):
            parts.append(
                f"<tr><td class=\"num\"><a href=\"#pair-{index}\">{index}</a></td>"
                f"<td>{esc(pair.student_a)}</td><td>{esc(pair.student_b)}</td>"
                f"<td><span class=\"bar\"><span style=\"width:{pair.similarity:.0%}\"></span></span>"
                f"{pair.similarity:.0%}</td><td class=\"num\">{pair.matching_lines}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p class=\"missing\">No pair reaches the threshold.</p>")
    if report.skipped:
        parts.append("<h2>Not compared</h2><ul class=\"notes\">")
        parts += [f"<li><b>{esc(s.student)}</b>: {esc(s.reason)}</li>" for s in report.skipped]
        parts.append("</ul>")
    if report.flagged:
        parts.append("<h2>Answers side by side</h2>"
                     "<p class=\"meta\">Highlighted: code both students have. Grey: starter code "
                     "from the release, not compared. Only answer cells with shared code are shown.</p>")
        by_student = {a.student: a for a in report.answers}
        parts += [_pair_html(i, pair, by_student) for i, pair in enumerate(report.flagged, start=1)]
    return page(title, "\n".join(parts))


def write_csv(path: Path, report: SimilarityReport) -> None:
    """Write :func:`to_csv` to ``path`` atomically."""
    write_atomic(path, to_csv(report))


def write_html(path: Path, report: SimilarityReport) -> None:
    """Write :func:`to_html` to ``path`` atomically."""
    write_atomic(path, to_html(report))


# --- reading a class ---------------------------------------------------------------------------

def build_report(submissions: list[tuple[str, Path]], release_notebook: Path, *, assignment: str,
                 threshold: float = DEFAULT_THRESHOLD, skipped: Iterable[Skipped] = (),
                 k: int = KGRAM, window: int = WINDOW) -> SimilarityReport:
    """Read each (student, notebook), fingerprint its answers and compare every pair.

    A notebook that cannot be read, that is another assignment's (as grading
    tells them apart), or that has none of the release's answer cells is
    added to ``skipped`` with the reason; it never stops the others.
    """
    starter = starter_code(nbformat.read(release_notebook, as_version=4))
    skipped = list(skipped)
    answers = []
    for student, path in submissions:
        try:
            notebook = read_submission(path)
            check_assignment(notebook, release_notebook)
        except SubmissionError as exc:
            skipped.append(Skipped(student, Path(path), str(exc)))
            continue
        cells = answer_cells(notebook, starter)
        if not cells:
            skipped.append(Skipped(student, Path(path), (
                f"{path}: none of its cells carries the grade_id of an answer cell of "
                f"{assignment} ({', '.join(starter)}), so it has no answers to compare.")))
            continue
        answers.append(fingerprint_answers(student, path, cells, starter, k=k, window=window))
    pairs_compared = len(answers) * (len(answers) - 1) // 2
    return SimilarityReport(assignment, threshold, answers, flag_pairs(answers, threshold),
                            skipped, pairs_compared, k, window)


def batch_submissions(out_dir: Path, assignment: str | None) -> tuple[str, list[tuple[str, Path]]]:
    """The assignment and its graded notebooks, as (student, notebook), from a
    batch folder's ``<student>/results.json``.

    ``assignment`` may be omitted when the folder holds one assignment only.
    A relative ``submission`` path is read from the current directory, where
    ``autograder grade`` was run. An unreadable ``results.json`` is skipped
    with :func:`~autograder.records.load_results`'s warning. Raises
    :class:`RecordsError` when there is nothing to read.
    """
    results = load_results(out_dir)
    if not results:
        raise RecordsError(f"{out_dir} holds no readable <student>/results.json: nothing to compare. "
                           "Grade the class first (`autograder grade SUBMISSIONS --assignment NAME "
                           f"--output-dir {out_dir}`), or give the submissions with --submissions.")
    found = sorted({r.assignment for r in results})
    if assignment is None:
        if len(found) > 1:
            raise RecordsError(f"{out_dir} holds results of several assignments ({', '.join(found)}); "
                               "choose one with --assignment.")
        assignment = found[0]
    chosen = [(r.student, Path(r.submission)) for r in results if r.assignment == assignment]
    if not chosen:
        raise RecordsError(f"{out_dir} holds no results for {assignment!r}, only for "
                           f"{', '.join(found)}. Check --assignment or --from.")
    return assignment, chosen


# --- the command ---------------------------------------------------------------------------------

def add_commands(subparsers) -> None:
    """Add ``similarity`` to the command line's ``subparsers``; it sets ``run``,
    which returns the exit code: 0 when the outputs were written, 2 with a
    message when there is nothing to compare."""
    command = subparsers.add_parser(
        "similarity", help="find pairs of submissions whose answers look copied",
        description="Compare the answer cells of every pair of submissions of one assignment and "
                    "write the pairs at or above a similarity threshold, most similar first, to a "
                    "CSV file and a self-contained HTML page with the matching lines side by side. "
                    "Starter code from the release is left out; nothing is deducted.",
    )
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="from_dir", type=Path, metavar="OUT",
                        help="a graded batch's output folder (OUT/<student>/results.json)")
    source.add_argument("--submissions", type=Path, metavar="DIR",
                        help="a folder of submissions: nbgrader's submitted/<student>/<assignment>/ "
                             "layout or one <student>.ipynb per student (needs --assignment)")
    options.add_assignment(command, required=False,
                           help="the assignment to compare (with --from, default: the only one in OUT)")
    command.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                         help="flag pairs at or above this similarity, from 0 to 1 (default: %(default)s)")
    command.add_argument("--html", type=Path, metavar="PATH",
                         help="the report page (default: OUT/similarity.html, or ./similarity.html "
                              "with --submissions)")
    command.add_argument("--csv", type=Path, metavar="PATH",
                         help="the flagged pairs as CSV (default: OUT/similarity.csv, or "
                              "./similarity.csv with --submissions)")
    options.add_course_dir(command,
                           help="nbgrader course directory, for the release notebook (default: this checkout)")
    command.set_defaults(run=run_similarity)


def _threshold(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _fail(message: str) -> int:
    print(f"autograder: error: {message}", file=sys.stderr)
    return 2


def run_similarity(args: argparse.Namespace) -> int:
    folder = args.from_dir or args.submissions
    skipped: list[Skipped] = []
    try:
        if args.from_dir:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assignment, submissions = batch_submissions(args.from_dir, args.assignment)
            for warning in caught:
                print(f"autograder: warning: {warning.message}", file=sys.stderr)
        else:
            if not args.assignment:
                return _fail("--submissions needs --assignment: the folder may hold several assignments.")
            assignment = args.assignment
            found, problems = discover(args.submissions, assignment)
            submissions = [(s.student, s.path) for s in found]
            skipped = [Skipped(p.student, p.path, p.reason) for p in problems]
        release = load_assignment(assignment, args.course_dir).release_notebook
        report = build_report(submissions, release, assignment=assignment,
                              threshold=args.threshold, skipped=skipped)
    except (RecordsError, NoSubmissionsError, CourseError) as exc:
        return _fail(str(exc))
    if len(report.answers) < 2:
        reasons = "".join(f"\n  {s.student}: {s.reason}" for s in report.skipped)
        return _fail(f"{folder} holds {len(report.answers)} comparable submission(s) of {assignment}; "
                     f"at least two are needed to compare.{reasons}")
    default_dir = args.from_dir or Path(".")
    html_path = args.html or default_dir / "similarity.html"
    csv_path = args.csv or default_dir / "similarity.csv"
    try:
        write_csv(csv_path, report)
        write_html(html_path, report)
    except OSError as exc:
        return _fail(f"cannot write the similarity report: {exc}.")
    for item in report.skipped:
        print(f"autograder: warning: not compared: {item.student}: {item.reason}", file=sys.stderr)
    print(f"compared {report.pairs_compared} pair(s) of {len(report.answers)} submissions of {assignment}: "
          f"{len(report.flagged)} at or above {report.threshold:g}; wrote {csv_path} and {html_path}")
    return 0
