"""docs/thresholds.md quotes the hidden suites' thresholds; these tests read
both tables and the suites' constants, so the two cannot drift apart."""

import ast
import re

import pytest

from autograder.course import SUITES_DIR, known_assignments
from conftest import REPO

DOC = REPO / "docs" / "thresholds.md"
TIME_TO_TARGET = "## Time to target"

FULL_AND_HALF = {
    ("linear_grading", "test_rounded_grade_accuracy"): ("≥", "TARGET_ACCURACY", "PARTIAL_ACCURACY"),
    ("boston_housing", "test_linear_model_test_mae"): ("≤", "LINEAR_MAX_MAE", "LINEAR_PARTIAL_MAE"),
    ("boston_housing", "test_mlp_test_mae_beats_linear"): ("≤", "MLP_MAX_MAE", "MLP_PARTIAL_MAE"),
    ("mnist_mlp", "test_test_accuracy"): ("≥", "TARGET_ACCURACY", "PARTIAL_ACCURACY"),
    ("mnist_cnn", "test_test_accuracy"): ("≥", "TARGET_ACCURACY", "PARTIAL_ACCURACY"),
    ("cifar10_cnn", "test_test_accuracy"): ("≥", "TARGET_ACCURACY", "PARTIAL_ACCURACY"),
}
"""Rows of the thresholds table that give full and half points: the
comparison and the suite constants for each."""


def suite_constants(assignment: str) -> dict[str, object]:
    """The module-level constants of ``assignment``'s hidden suite, read
    without running it."""
    tree = ast.parse((SUITES_DIR / assignment / f"test_{assignment}.py").read_text())
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass  # computed, not a literal threshold
    return constants


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, as cells (``\\|`` is a literal bar)."""
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:  # after the header and its --- line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))])
    return rows


def bound(cell: str, label: str = "") -> tuple[str, float]:
    match = re.search(rf"([≥≤]) ([\d.]+){' ' + label if label else ''}", cell)
    assert match, f"docs/thresholds.md: no '≥ x' or '≤ x' {label} in {cell!r}"
    return match.group(1), float(match.group(2))


def test_time_to_target_table_quotes_each_suites_target():
    rows = table_rows(DOC.read_text().split(TIME_TO_TARGET)[1])
    assert sorted(row[0] for row in rows) == sorted(known_assignments())
    for assignment, target, *_ in rows:
        _, value = bound(target)
        constants = suite_constants(assignment)
        assert value in constants.values(), (
            f"docs/thresholds.md, time to target, {assignment}: {target!r}, but no constant of "
            f"its suite is {value}: quote the threshold the suite uses"
        )


@pytest.mark.parametrize("assignment, check", list(FULL_AND_HALF))
def test_thresholds_table_quotes_full_and_half_points(assignment, check):
    rows = table_rows(DOC.read_text().split(TIME_TO_TARGET)[0])
    (threshold,) = [row[2] for row in rows if row[0] == assignment and row[1].startswith(f"`{check}`")]
    comparison, full, half = FULL_AND_HALF[assignment, check]
    constants = suite_constants(assignment)
    for label, name in (("full", full), ("half", half)):
        assert bound(threshold, label) == (comparison, constants[name]), (
            f"docs/thresholds.md, {assignment} {check}: {threshold!r}, but the suite has "
            f"{name} = {constants[name]}"
        )
