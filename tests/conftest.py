"""Shared helpers: build student submissions from the real release notebooks
and grade them with the real engine."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.results import GradingResult, Status

from autograder.course import default_course_dir, load_assignment
from autograder.doctor import check_dataset
from autograder.engine.evaluate import collect_plan
from autograder.engine.batch import limit_overrides
from autograder.engine.grade import grade_submission
from autograder.engine.worker import Job

REPO = default_course_dir()


# ------------------------------------------------------------------ tests that need real data


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "datasets(*names): needs these datasets; the test is skipped, with where "
                   "they were looked for and how to provide them, when they cannot be had")


def needs_data_of(assignment: str) -> pytest.MarkDecorator:
    """``pytest.mark.datasets`` with the datasets ``assignment`` declares in its
    ``assignment.toml``."""
    return pytest.mark.datasets(*load_assignment(assignment).datasets)


@functools.cache
def _unavailable(dataset: str) -> str | None:
    """Why ``dataset`` cannot be had (found or downloaded), in one line. A
    corrupt copy is no reason to skip: the test runs and says so."""
    finding = check_dataset(dataset)
    return f"{finding.name}: {finding.detail}. To provide it: {finding.fix}" if finding.status == "WARN" else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for marker in item.iter_markers("datasets"):
        for dataset in marker.args:
            reason = _unavailable(dataset)
            if reason:
                pytest.skip(reason)


def make_submission(path: Path, assignment: str, answers: dict[str, str], *,
                    edit=None) -> Path:
    """Write a student's notebook: the release with ``answers`` (grade_id ->
    code) filled in, as a student would save it from Jupyter. ``edit`` may
    change the notebook further (tamper with cells, delete them)."""
    release = REPO / "assignments" / assignment / f"{assignment}.ipynb"
    notebook = nbformat.read(release, as_version=4)
    unknown = set(answers) - {c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells}
    assert not unknown, f"no such answer cells: {unknown}"
    for cell in notebook.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    if edit:
        edit(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def by_name(result) -> dict:
    """Check results keyed by check name."""
    return {t.name: t for t in result.tests}


@pytest.fixture(scope="session")
def grade(tmp_path_factory):
    """Grade a notebook with the engine; returns the GradingResult."""

    def _grade(path: Path, assignment: str):
        return grade_submission(path, load_assignment(assignment))

    return _grade


@pytest.fixture(scope="session")
def read_json():
    return lambda path: json.loads(Path(path).read_text())


def worker_job(assignment: str, submission: Path, out: Path) -> Job:
    """A batch worker's job: grade ``submission`` into ``out`` (the student is
    its folder's name) with the assignment's own limits."""
    declared = load_assignment(assignment)
    return Job(submission=str(submission), student=out.name, out=str(out), assignment=assignment,
               course_dir=str(declared.course_dir), limits=limit_overrides(declared.limits),
               sandbox_mode="auto")


def grade_with_cli(notebook: Path, assignment: str, out: Path) -> subprocess.CompletedProcess:
    """Run the real ``autograder grade`` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", str(notebook),
         "--assignment", assignment, "--json", str(out)],
        capture_output=True, text=True, timeout=900,
    )


@functools.cache
def planned_points(assignment: str) -> dict[str, float]:
    """The checks ``assignment``'s hidden suite declares and their points, in
    the suite's order, as the grader plans them (collected; nothing runs)."""
    return {c.name: c.points for c in collect_plan(load_assignment(assignment).suite_dir)}


def earned(assignment: str, *checks: str) -> float:
    """What passing ``checks`` of ``assignment`` earns."""
    return sum(planned_points(assignment)[n] for n in checks)


LINEAR_POINTS = {
    "test_data_summary": 1,
    "test_model_is_linear": 2,
    "test_input_output_shapes_and_parameters": 1,
    "test_training_loss": 2,
    "test_rounded_grade_accuracy": 3,
    "test_weights_make_sense": 1,
}
"""linear_grading's checks and their points, in the suite's order."""
LINEAR_SUMMARY = "x_mean = x.mean(axis=0)\nx_min = x.min(axis=0)\nx_max = x.max(axis=0)"
LINEAR_MODEL = "model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])"
# A dense network for CIFAR-10 (1,578,506 parameters, no convolution): the
# cifar10_cnn and cifar10_challenge suites each have a rule it breaks.
CIFAR10_DENSE_MODEL = """
keras.utils.set_random_seed(1)
model = keras.Sequential([
    keras.Input(shape=(32, 32, 3)),
    layers.Flatten(),
    layers.Dense(512, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
"""
# The cifar10_cnn reference's three convolution blocks (32, 64 and 128
# filters); ``head`` is the layers after them, written as code.
CIFAR10_CONV_MODEL = """
keras.utils.set_random_seed(1)
model = keras.Sequential([keras.Input(shape=(32, 32, 3))]
    + [layer for filters in (32, 64, 128) for layer in (
        layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.MaxPooling2D(),
        layers.BatchNormalization(), layers.Activation("relu"))]
    + [{head}])
"""
# Least-squares weights with the bias shifted by +0.40: rounded accuracy 0.5765
# and MSE 0.330 on grading.npz, whatever the seed: half the accuracy points.
LINEAR_HAND_SET_WEIGHTS = (
    "model.compile(optimizer='sgd', loss='mse')\n"
    "model.set_weights([np.array([[0.2302], [0.1429], [0.1832]]), np.array([-1.1324])])\n"
    "history = model.fit(x[:0], y[:0], epochs=1, verbose=0)"
)


def failing(result) -> set[str]:
    """Names of the checks that did not pass."""
    return {t.name for t in result.tests if t.status is not Status.PASS}


def assert_only_these_fail(result, assignment: str, says: dict[str, list[str]]) -> dict:
    """Assert that the checks named in ``says`` are exactly those that fail,
    that each one's message contains each of its texts, and that every other
    check of ``assignment`` earns its full points. Returns the checks by name."""
    checks = by_name(result)
    assert failing(result) == set(says)
    assert result.score == earned(assignment, *set(planned_points(assignment)) - set(says))
    for name, texts in says.items():
        for text in texts:
            assert text in checks[name].output
    return checks


def shared_once(tmp_path_factory, key: str, compute) -> dict:
    """``compute(folder)``'s JSON-able result, computed once per test session
    even when pytest-xdist runs the tests in several processes: the first
    process to ask computes it under a lock in a folder they all share, the
    others read it back (the full-data references take minutes each)."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each process has its own folder below one the session shares.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / "once" / key
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "result.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stored.is_file():
            stored.write_text(json.dumps(compute(folder)))
    return json.loads(stored.read_text())


@pytest.fixture(scope="session")
def reference_cli(tmp_path_factory):
    """``reference_cli(assignment)``: the reference solution graded once per
    session by the real command line, as (results.json contents, stdout)."""

    def _grade(assignment, folder):
        solution = REPO / "solutions" / assignment / f"{assignment}.ipynb"
        completed = grade_with_cli(solution, assignment, folder / "results.json")
        assert completed.returncode == 0, completed.stderr
        return {"results": json.loads((folder / "results.json").read_text()), "stdout": completed.stdout}

    @functools.cache
    def _reference(assignment):
        graded = shared_once(tmp_path_factory, f"{assignment}_reference",
                             functools.partial(_grade, assignment))
        return graded["results"], graded["stdout"]

    return _reference


@pytest.fixture(scope="session")
def blank_release(grade, tmp_path_factory):
    """``blank_release(assignment)``: the committed release, as a student
    receives it, graded once per session by the engine."""

    @functools.cache
    def _blank(assignment):
        release = REPO / "assignments" / assignment / f"{assignment}.ipynb"
        graded = shared_once(tmp_path_factory, f"{assignment}_blank",
                             lambda folder: grade(release, assignment).to_dict())
        return GradingResult.from_dict(graded)

    return _blank


@pytest.fixture(scope="session")
def graded(grade, tmp_path_factory):
    """``graded(assignment, name, answers)``: a submission built from the
    release with ``answers`` filled in, graded once per session."""
    cache = {}

    def _graded(assignment, name, answers, **kw):
        if (assignment, name) not in cache:
            path = tmp_path_factory.mktemp(name) / f"{assignment}.ipynb"
            cache[assignment, name] = grade(make_submission(path, assignment, answers, **kw), assignment)
        return cache[assignment, name]

    return _graded


@pytest.fixture(scope="session")
def linear_partial_submission(tmp_path_factory):
    """A linear_grading submission that earns partial credit (6.5 of 10)."""
    path = tmp_path_factory.mktemp("linear_partial") / "linear_grading.ipynb"
    return make_submission(path, "linear_grading", {
        "summary": LINEAR_SUMMARY, "build_model": LINEAR_MODEL, "train": LINEAR_HAND_SET_WEIGHTS,
    })


# ------------------------------------------------------------------ nbgrader


def course_copy(tmp: Path, assignments) -> Path:
    """A throw-away nbgrader course: the config and the instructor's sources."""
    course = tmp / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    for name in assignments:
        shutil.copytree(REPO / "solutions" / name, course / "solutions" / name, symlinks=False)
    return course


def nbgrader(course: Path, *args):
    """Run an ``nbgrader`` command in ``course`` with its own gradebook; it must succeed."""
    completed = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--db", f"sqlite:///{course / 'gradebook.db'}"],
        cwd=course, capture_output=True, text=True, timeout=1200,
        # nbgrader runs the `alembic` command by name: it must be on PATH.
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def graded_cells(name):
    """The graded cells of ``name``'s source notebook."""
    notebook = nbformat.read(REPO / "solutions" / name / f"{name}.ipynb", as_version=4)
    return [c for c in notebook.cells if c.metadata["nbgrader"].get("grade")]


def check_called(cell) -> str:
    """The hidden-suite check a graded cell runs (the bridge call's 2nd argument)."""
    call = next(line for line in cell.source.splitlines() if line.startswith("check("))
    return call.split(",")[1].strip().strip("'\"")


MNIST_PREPARE = """
x_train_scaled = x_train.astype("float32") / 255
x_test_scaled = x_test.astype("float32") / 255
x_fit, y_fit = x_train_scaled[:-5000], y_train[:-5000]
x_val, y_val = x_train_scaled[-5000:], y_train[-5000:]
"""
"""mnist_mlp's data answer as the notebook teaches it: scaled, the last 5,000
of the training images the kernel is served kept for validation."""
MNIST_MLP_MODEL = """
keras.utils.set_random_seed(1)
model = keras.Sequential([
    keras.Input(shape=(28, 28)),
    keras.layers.Flatten(),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(10, activation="softmax"),
])
"""
"""mnist_mlp's reference model, seeded."""
