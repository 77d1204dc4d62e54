"""The pytest plugin every hidden suite runs under.

It adds what a suite needs and pytest lacks: points per check (the
``points`` marker), the student's exported artifacts as fixtures, and a JSON
report of one :class:`~autograder.results.CheckResult` per check. The engine
loads it with ``-p autograder.suite_plugin``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autograder.artifacts import EXPORT_LOG, KINDS, read_export_log
from autograder.checks import NotAttempted, PartialCredit, refuse_unsafe_model
from autograder.results import CheckResult, Status

ARTIFACTS_OPTION = "artifacts_dir"
REPORT_OPTION = "grading_report"
PLAN_OPTION = "grading_plan"
FEEDBACK_OPTION = "feedback_dir"
MAX_MESSAGE = 2000


def pytest_addoption(parser):
    group = parser.getgroup("autograder", "hidden-suite grading")
    group.addoption(
        "--artifacts-dir",
        dest=ARTIFACTS_OPTION,
        help="directory of the artifacts the student's kernel exported",
    )
    group.addoption(
        "--grading-report",
        dest=REPORT_OPTION,
        help="write one JSON result per check to this file",
    )
    group.addoption(
        "--grading-plan",
        dest=PLAN_OPTION,
        help="write the collected checks and their points to this file (with --collect-only)",
    )
    group.addoption(
        "--feedback-dir",
        dest=FEEDBACK_OPTION,
        help="keep what the checks measured (metrics, predictions) here for feedback reports",
    )
    parser.addini(ARTIFACTS_OPTION, "default for --artifacts-dir")
    parser.addini(REPORT_OPTION, "default for --grading-report")
    parser.addini(FEEDBACK_OPTION, "default for --feedback-dir")
    parser.addini(PLAN_OPTION, "default for --grading-plan")


def _setting(config, name):
    return config.getoption(name) or config.getini(name) or None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "points(n): the check is worth n points (default 1)"
    )
    config.stash[_results_key] = []


_results_key = pytest.StashKey[list]()


def points_of(item) -> float:
    """The points a check is worth: its ``points`` marker's one positive
    number, 1 without a marker. A malformed marker stops the suite with an
    error naming the check, rather than silently changing the maximum."""
    marker = item.get_closest_marker("points")
    if marker is None:
        return 1.0
    value = marker.args[0] if len(marker.args) == 1 and not marker.kwargs else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.points takes one positive number, e.g. "
            f"@pytest.mark.points(2); got args={marker.args!r} kwargs={marker.kwargs!r}."
        )
    return float(value)


def _description(item) -> str:
    function = getattr(item, "function", None)
    doc = ((function.__doc__ if function else "") or "").strip().splitlines()
    return doc[0] if doc else ""


def pytest_collection_finish(session):
    """Every check's points are valid, and with ``--grading-plan`` the
    checks and points are written down: the assignment's maximum score."""
    plan = [{"name": item.name, "points": points_of(item), "description": _description(item)}
            for item in session.items]
    path = _setting(session.config, PLAN_OPTION)
    if path:
        Path(path).write_text(json.dumps(plan, indent=2))


def _teaching_message(excinfo) -> str:
    """The message an author wrote, without pytest's rewritten-assert detail
    (which would quote the hidden suite's source)."""
    exc = excinfo.value
    if isinstance(exc, PartialCredit):
        return exc.message
    if isinstance(exc, (AssertionError, NotAttempted)):
        message = str(exc).split("\nassert ")[0].strip()
        return message or "This check failed."
    if isinstance(exc, pytest.fail.Exception):
        return str(exc)
    return f"The check could not run on your work: {type(exc).__name__}: {exc}"


def _classify(excinfo) -> Status:
    if excinfo.errisinstance(NotAttempted):
        return Status.NOT_ATTEMPTED
    if excinfo.errisinstance((AssertionError, PartialCredit, pytest.fail.Exception)):
        return Status.FAIL
    return Status.ERROR


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        points = points_of(item)
        if report.passed:
            result = CheckResult(item.name, points, points, Status.PASS)
        else:
            status = _classify(call.excinfo)
            fraction = (
                call.excinfo.value.fraction if call.excinfo.errisinstance(PartialCredit) else 0.0
            )
            result = CheckResult(
                item.name,
                round(points * fraction, 4),
                points,
                status,
                output=_teaching_message(call.excinfo)[:MAX_MESSAGE],
            )
        result.description = _description(item)
        item.config.stash[_results_key].append(result)
        _write_report(item.config)
    return report


def _write_report(config) -> None:
    """Rewrite the report with every check judged so far: when the grader
    stops a suite that runs out of time, what was judged still counts."""
    path = _setting(config, REPORT_OPTION)
    if path:
        results = [r.to_dict() for r in config.stash[_results_key]]
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps({"tests": results}, indent=2))
        tmp.replace(path)


def pytest_sessionfinish(session):
    _write_report(session.config)


class Artifacts:
    """Read-only access to what the student's kernel exported.

    Everything is loaded in this (trusted) process with safe loaders: models
    with ``safe_mode=True``, arrays without pickle, history as plain JSON.
    A missing artifact raises :class:`NotAttempted`.
    """

    def __init__(self, directory: Path | None):
        self.directory = Path(directory) if directory else None
        self._cache: dict[str, object] = {}
        self._log = read_export_log(self.directory / EXPORT_LOG) if self.directory else {}

    def _path(self, name: str, suffix: str) -> Path:
        path = self.directory / f"{name}{suffix}" if self.directory else None
        if path is None or not path.is_file():
            entry = self._log.get(name)
            why = entry.message[:500] if entry else ""
            raise NotAttempted(
                why or f"Your notebook does not define `{name}`, so this part was not graded."
            )
        return path

    def _cached(self, key, load):
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def model(self, name: str = "model"):
        def load():
            path = self._path(name, KINDS["model"].suffix)  # before importing Keras: seconds saved when absent
            refuse_unsafe_model(path, name)  # names a Lambda or custom layer, reading JSON only
            import keras

            try:
                return keras.saving.load_model(path, safe_mode=True, compile=False)
            except Exception as exc:
                raise AssertionError(
                    f"Your `{name}` could not be loaded safely ({type(exc).__name__}: "
                    f"{str(exc)[:300]}). Build it from standard Keras layers only: "
                    "Lambda layers and custom classes are refused by safe loading."
                ) from None

        return self._cached(("model", name), load)

    def history(self, name: str = "history") -> dict[str, list[float]]:
        def load():
            data = json.loads(self._path(name, KINDS["history"].suffix).read_text())
            if not isinstance(data, dict):
                raise AssertionError(f"`{name}` should be the History that model.fit() returns.")
            return {str(k): [float(v) for v in vals] for k, vals in data.items()}

        return self._cached(("history", name), load)

    def array(self, name: str) -> np.ndarray:
        return self._cached(
            ("array", name), lambda: np.load(self._path(name, KINDS["array"].suffix), allow_pickle=False)
        )


@pytest.fixture(scope="session")
def artifacts(request) -> Artifacts:
    """The student's exported artifacts (see :class:`Artifacts`)."""
    return Artifacts(_setting(request.config, ARTIFACTS_OPTION))


class Feedback:
    """What the checks measured, kept for the student's report.

    Everything here is computed by the suite in this trusted process, never
    read from the kernel. Without ``--feedback-dir`` it is thrown away, so a
    suite can always call it. Recording never raises: feedback must not change
    a check's outcome.
    """

    METRICS_FILE = "metrics.json"

    def __init__(self, directory: Path | None):
        self.directory = Path(directory) if directory else None
        self.metrics: dict[str, float] = {}

    def metric(self, name: str, value: float) -> None:
        """A headline measurement, e.g. ``test_accuracy`` (Gradescope's leaderboard shows it)."""
        value = float(value)
        if not np.isfinite(value):  # a diverged model: no number to show, and JSON has no NaN
            return
        self.metrics[name] = value
        self._save_json(self.METRICS_FILE, self.metrics)

    def classification(self, y_true, y_pred, class_names=None) -> None:
        """Integer labels and predicted classes on held-out data (a confusion matrix)."""
        names = [str(n) for n in class_names] if class_names is not None else []
        self._save_npz("classification.npz", y_true=np.asarray(y_true, dtype=np.int64).ravel(),
                       y_pred=np.asarray(y_pred, dtype=np.int64).ravel(),
                       class_names=np.asarray(names, dtype=str))

    def regression(self, y_true, y_pred, label: str = "prediction") -> None:
        """Targets and predictions on held-out data (a predictions-vs-truth plot)."""
        self._save_npz(f"regression_{label}.npz",
                       y_true=np.asarray(y_true, dtype=np.float64).ravel(),
                       y_pred=np.asarray(y_pred, dtype=np.float64).ravel())

    def _save_json(self, name: str, data) -> None:
        if self.directory:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                (self.directory / name).write_text(json.dumps(data, indent=2))
            except (OSError, ValueError):
                pass

    def _save_npz(self, name: str, **arrays) -> None:
        if self.directory:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(self.directory / name, **arrays)
            except (OSError, ValueError):
                pass


@pytest.fixture(scope="session")
def feedback(request) -> Feedback:
    """Where checks keep measurements for feedback reports (see :class:`Feedback`)."""
    return Feedback(_setting(request.config, FEEDBACK_OPTION))
