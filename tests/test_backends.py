"""Grading under each Keras backend: the references earn full marks and the
blank releases nothing under JAX and PyTorch as under TensorFlow, and each
result names the backend that graded it. A backend that is not installed
(`pip install -e ".[jax]"` or `".[torch]"`; CI installs both) is skipped
with the command that installs it.

The mnist_mlp reference is not graded under PyTorch here: on 2 CPU cores
PyTorch's eager training of it took 333 s (measured 2026-11-30 on this
project's machine while other work ran), where TensorFlow takes about 25 s,
which is more than this suite can spend (the assignment allows PyTorch 900 s
a cell, `[limits.backend.torch]`). Its blank release is graded."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, needs_data_of

pytestmark = pytest.mark.slow

BACKENDS = {"jax": "jax", "torch": "torch"}
"""Keras backend -> the module it needs."""
CASES = [("jax", "linear_grading", True), ("jax", "mnist_mlp", True),
         ("torch", "linear_grading", True), ("torch", "mnist_mlp", False)]
"""(backend, assignment, whether its reference is graded too)."""


@pytest.mark.parametrize("backend, assignment, with_reference",
                         [pytest.param(*case, marks=needs_data_of(case[1])) for case in CASES])
def test_reference_full_and_blank_zero_under_each_backend(backend, assignment, with_reference, tmp_path):
    if importlib.util.find_spec(BACKENDS[backend]) is None:
        pytest.skip(f'Keras backend {backend} is not installed: pip install -e ".[{backend}]"')
    folder = tmp_path / "class"
    folder.mkdir()
    if with_reference:
        shutil.copy(REPO / "solutions" / assignment / f"{assignment}.ipynb", folder / "reference.ipynb")
    shutil.copy(REPO / "assignments" / assignment / f"{assignment}.ipynb", folder / "blank.ipynb")
    out = tmp_path / "graded"
    completed = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", str(folder), "--assignment", assignment,
         "--output-dir", str(out), "--workers", "2"],
        capture_output=True, text=True, timeout=1200, env={**os.environ, "KERAS_BACKEND": backend},
    )
    assert completed.returncode in (0, 1), completed.stdout + completed.stderr
    blank = json.loads((out / "blank" / "results.json").read_text())
    assert blank["score"] == 0 and blank["max_score"] > 0 and blank["backend"] == backend
    if with_reference:
        reference = json.loads((out / "reference" / "results.json").read_text())
        assert reference["score"] == reference["max_score"] == blank["max_score"], [
            (t["name"], t["output"]) for t in reference["tests"] if t["score"] < t["max_score"]]
        assert reference["backend"] == backend
