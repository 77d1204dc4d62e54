"""Where a course's pieces live on disk.

A course directory is an nbgrader course directory (it holds
``nbgrader_config.py``): instructors' source notebooks in ``solutions/``,
student releases in ``assignments/``. The hidden suites live beside the engine
in ``autograder/suites/<assignment>/``; they are never part of a wheel, so
they exist only in an instructor's checkout.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from autograder.artifacts import KINDS
from autograder.errors import StopGrading

PACKAGE_DIR = Path(__file__).resolve().parent
SUITES_DIR = PACKAGE_DIR / "suites"
COURSE_DIR_ENV = "AUTOGRADER_COURSE_DIR"
BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends a grader can run (``KERAS_BACKEND``)."""


def grading_backend() -> str:
    """The Keras backend this grader runs the student's kernel and the hidden
    suite with: ``KERAS_BACKEND``, else Keras's default, TensorFlow."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


class CourseError(StopGrading):
    """The course directory or an assignment in it is missing or malformed."""


def default_course_dir() -> Path:
    """The course directory: ``$AUTOGRADER_COURSE_DIR``, else this checkout."""
    if os.environ.get(COURSE_DIR_ENV):
        return Path(os.environ[COURSE_DIR_ENV]).resolve()
    return PACKAGE_DIR.parent


@dataclass(frozen=True)
class Limits:
    """Resource limits for running one submission."""

    cell_timeout: int = 120
    """Seconds one notebook cell may run before it is interrupted."""
    notebook_timeout: int = 900
    """Seconds the whole notebook may run; cells after that are not run."""
    startup_timeout: int = 60
    """Seconds the kernel may take to start."""
    evaluation_timeout: int = 600
    """Seconds the hidden suite may take on the exported artifacts."""
    memory_gib: float = 6.0
    """Resident memory of the kernel and its children; above it the kernel is stopped."""
    max_processes: int = 64
    """Processes the kernel may have at once (a fork bomb is stopped)."""
    max_output_mib: float = 16.0
    """Cell output the kernel may produce in total; the rest is dropped."""
    gpu_memory_gib: float = 8.0
    """GPU memory one kernel needs, GiB, on a GPU grader: sets how many kernels
    share one card when ``--per-gpu`` is not given (``engine/gpu.py``)."""
    evaluate_on_gpu: bool = False
    """Whether the hidden suite may use the kernel's GPU; by default it runs on
    the CPU, whatever the kernel used."""

    def __post_init__(self):
        for name, spec in self.__dataclass_fields__.items():
            value = getattr(self, name)
            if spec.type in ("bool", bool):
                ok = isinstance(value, bool)
                rule = "true or false"
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
                ok = ok and (spec.type not in ("int", int) or float(value).is_integer())
                rule = "a positive whole number" if spec.type in ("int", int) else "a positive number"
            if not ok:
                raise CourseError(f"Limit {name} = {value!r} is not valid: it must be {rule}.")


@dataclass(frozen=True)
class Assignment:
    """One assignment: its notebooks, its hidden suite and what the suite needs.

    ``artifacts`` maps a variable name in the student's notebook to the kind of
    thing the kernel exports for it: ``model`` (saved as ``.keras``),
    ``history`` (a Keras ``History`` or its ``.history`` dict, saved as JSON)
    or ``array`` (saved as ``.npy`` without pickling).
    """

    name: str
    course_dir: Path
    artifacts: dict[str, str] = field(default_factory=dict)
    limits: Limits = Limits()
    datasets: tuple[str, ...] = ()
    """The kit's datasets the notebook loads (``autograder.datasets`` names)."""

    @property
    def source_notebook(self) -> Path:
        return self.course_dir / "solutions" / self.name / f"{self.name}.ipynb"

    @property
    def release_dir(self) -> Path:
        return self.course_dir / "assignments" / self.name

    @property
    def release_notebook(self) -> Path:
        return self.release_dir / f"{self.name}.ipynb"

    @property
    def suite_dir(self) -> Path:
        return SUITES_DIR / self.name

    def release_files(self) -> list[Path]:
        """Files released beside the notebook (data the notebook reads)."""
        return sorted(
            p for p in self.release_dir.iterdir() if p.is_file() and p.suffix != ".ipynb"
        )


def known_assignments() -> list[str]:
    """Names of the assignments that have a hidden suite in this checkout."""
    if not SUITES_DIR.is_dir():
        return []
    return sorted(p.name for p in SUITES_DIR.iterdir() if (p / "assignment.toml").is_file())


def _check_limit_names(limits: dict, where: str) -> None:
    unknown = set(limits) - set(Limits.__dataclass_fields__)
    if unknown:
        raise CourseError(
            f"{where}: unknown limit(s) {', '.join(sorted(unknown))}; "
            f"known limits are {', '.join(Limits.__dataclass_fields__)}."
        )


def load_assignment(name: str, course_dir: Path | None = None, **limit_overrides) -> Assignment:
    """Read ``autograder/suites/<name>/assignment.toml``, the one place an
    assignment declares its artifacts and limits.

    Limits come from ``[limits]``, then from ``[limits.backend.NAME]`` for the
    backend this grader runs (:func:`grading_backend`: training can take
    several times as long under one backend as under another), then from
    ``limit_overrides`` (for example ``cell_timeout=30`` from the command
    line); ``None`` values are ignored.
    """
    course_dir = Path(course_dir).resolve() if course_dir else default_course_dir()
    config_path = SUITES_DIR / name / "assignment.toml"
    if not config_path.is_file():
        known = ", ".join(known_assignments()) or "none"
        raise CourseError(
            f"No hidden suite for assignment {name!r}: {config_path} does not exist. "
            f"Known assignments: {known}. Hidden suites exist only in the instructor's "
            "checkout of the kit, not in the student wheel."
        )
    try:
        config = tomllib.loads(config_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CourseError(f"{config_path} is not valid TOML: {exc}") from exc

    artifacts = dict(config.get("artifacts", {}))
    for variable, kind in artifacts.items():
        if kind not in KINDS:
            raise CourseError(
                f"{config_path}: artifact {variable!r} has kind {kind!r}; "
                f"use one of {', '.join(KINDS)}."
            )
    datasets = config.get("datasets", [])
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise CourseError(f"{config_path}: `datasets` must be a list of dataset names, e.g. [\"mnist\"].")
    from autograder.datasets import LOADERS

    unknown_data = sorted(set(datasets) - set(LOADERS))
    if unknown_data:
        raise CourseError(
            f"{config_path}: unknown dataset(s) {', '.join(unknown_data)}; "
            f"known datasets are {', '.join(sorted(LOADERS))}."
        )
    declared = dict(config.get("limits", {}))
    per_backend = declared.pop("backend", {})
    _check_limit_names(declared, f"{config_path}: [limits]")
    if not isinstance(per_backend, dict) or not all(isinstance(v, dict) for v in per_backend.values()):
        raise CourseError(f"{config_path}: [limits.backend] must hold one table per backend, "
                          "e.g. [limits.backend.torch] with cell_timeout = 600.")
    unknown_backends = sorted(set(per_backend) - set(BACKENDS))
    if unknown_backends:
        raise CourseError(f"{config_path}: unknown backend(s) {', '.join(unknown_backends)} in "
                          f"[limits.backend]; the Keras backends are {', '.join(BACKENDS)}.")
    for backend, limits in per_backend.items():
        _check_limit_names(limits, f"{config_path}: [limits.backend.{backend}]")
    declared.update(per_backend.get(grading_backend(), {}))
    overrides = {k: v for k, v in limit_overrides.items() if v is not None}
    try:
        limits = Limits(**{**declared, **overrides})
    except CourseError as exc:
        raise CourseError(f"{config_path} (or the command line): {exc}") from None
    assignment = Assignment(
        name=name,
        course_dir=course_dir,
        artifacts=artifacts,
        limits=limits,
        datasets=tuple(datasets),
    )
    for required in (assignment.source_notebook, assignment.release_notebook):
        if not required.is_file():
            raise CourseError(
                f"Assignment {name!r} is incomplete: {required} does not exist. "
                "Run `nbgrader generate_assignment` in the course directory to "
                "produce the release from solutions/."
            )
    return assignment
