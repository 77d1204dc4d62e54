"""What students receive: a wheel with the loaders and the engine, but no
hidden suite, no solution and no data generator."""

import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )
    (path,) = out.glob("*.whl")
    return path


def test_wheel_holds_no_hidden_suite_solution_or_generator(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    leaks = [n for n in names if "suites/" in n or "solutions" in n or "make_grading" in n
             or n.rsplit("/", 1)[-1].startswith("test_")]
    assert leaks == []
    assert "autograder/bundled_data/manifest.json" in names
    assert "autograder/bundled_data/grading.npz" in names
    assert "autograder/datasets/mnist.py" in names


def test_installed_wheel_loads_data_but_cannot_grade(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True, timeout=600,
    )
    probe = (
        "import autograder, autograder.course as c\n"
        "from autograder.datasets import grading\n"
        "x, y = grading.load_data()\n"
        "print(autograder.__file__.startswith(%r), x.shape, c.known_assignments())\n" % str(target)
    )
    env = {**os.environ, "PYTHONPATH": str(target), "AUTOGRADER_OFFLINE": "1"}
    env.pop("AUTOGRADER_DATA_DIR", None)
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    assert completed.stdout.split() == ["True", "(2000,", "3)", "[]"], completed.stderr
