"""What the threshold benchmarks share: an assignment's hidden suite loaded
as a module, so that a benchmark measures with the suite's own constants and
functions (thresholds are never copied into a benchmark), and a one-line
summary of each measured column.

The benchmarks run as scripts (``python benchmarks/NAME.py``), which puts
this folder first on ``sys.path``: ``from suite_measures import load_suite``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

SUITES = Path(__file__).resolve().parents[1] / "autograder" / "suites"


def load_suite(assignment: str):
    """``autograder/suites/ASSIGNMENT/test_ASSIGNMENT.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"{assignment}_suite",
                                                  SUITES / assignment / f"test_{assignment}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in a suite look their module up
    spec.loader.exec_module(module)
    return module


def print_summaries(labels, rows) -> None:
    """One line ``label: min ...  mean ...  max ...`` per column of ``rows``
    (one row per run), labelled in column order; columns beyond ``labels``
    are not summarised."""
    columns = np.array(rows, dtype="float64").T
    for label, values in zip(labels, columns):
        print(f"{label}: min {values.min():.4f}  mean {values.mean():.4f}  max {values.max():.4f}")
