"""Grading results: check result -> grading result, each with ``to_dict()``."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field


RESULTS_FILE = "results.json"
"""One graded submission's results in an output folder: ``OUT/<student>/results.json``."""


class Status(str, enum.Enum):
    """How a check ended. Distinct outcomes, so feedback can say which."""

    PASS = "pass"
    FAIL = "fail"
    """The work was checked and is wrong (possibly with partial credit)."""
    ERROR = "error"
    """The check could not judge the work: something raised unexpectedly."""
    NOT_ATTEMPTED = "not-attempted"
    """What the check needs was never produced by the notebook."""


@dataclass
class CheckResult:
    name: str
    score: float
    max_score: float
    status: Status
    output: str = ""
    description: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "CheckResult":
        return cls(**{**data, "status": Status(data["status"])})


@dataclass
class GradingResult:
    assignment: str
    submission: str
    tests: list[CheckResult] = field(default_factory=list)
    execution_time: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: prepare, kernel_start, execute, export, evaluate;
    ``kernel_start_ahead``, where present, is the part of ``kernel_start``
    spent before the submission's turn (a batch worker started the kernel
    while the previous submission was evaluated)."""
    notes: list[str] = field(default_factory=list)
    """Things the student should know that no single check owns."""
    staff_notes: list[str] = field(default_factory=list)
    """Things only the course staff should see (an unconfined kernel, a
    failed integrity check); never shown to the student."""
    sandbox: str = ""
    """What confined the student's kernel: ``bwrap``, or ``none`` and why."""
    backend: str = ""
    """The Keras backend the kernel reported using (else the one it was given)."""
    device: str = ""
    """What the kernel trained on: ``CPU``, or which GPU and its share (see
    :func:`autograder.engine.grade.grade_submission`)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Headline measurements the suite made itself, e.g. ``test_accuracy``."""
    student: str = ""
    """Who submitted, where the submission's place says (batch grading)."""
    alias: str = ""
    """The name the student asked to be shown by on a leaderboard
    (``LEADERBOARD_ALIAS`` in the notebook); the student's own text."""
    submitted_at: str = ""
    """When the notebook was handed in, as the ``timestamp.txt`` that
    ``nbgrader submit`` wrote and ``nbgrader collect`` left beside it says
    (e.g. ``2026-03-14 16:59:00.000000 UTC``); empty where there is none."""

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 4)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 4)

    def to_dict(self) -> dict:
        return {
            "assignment": self.assignment,
            "submission": self.submission,
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.execution_time, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "notes": list(self.notes),
            "staff_notes": list(self.staff_notes),
            "sandbox": self.sandbox,
            "backend": self.backend,
            "device": self.device,
            "metrics": dict(self.metrics),
            "student": self.student,
            "alias": self.alias,
            "submitted_at": self.submitted_at,
            "tests": [t.to_dict() for t in self.tests],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "GradingResult":
        """Read back what :meth:`to_dict` wrote (``score`` is recomputed)."""
        return cls(
            assignment=data["assignment"],
            submission=data["submission"],
            tests=[CheckResult.from_dict(t) for t in data.get("tests", [])],
            execution_time=data.get("execution_time", 0.0),
            timings=dict(data.get("timings", {})),
            notes=list(data.get("notes", [])),
            staff_notes=list(data.get("staff_notes", [])),
            sandbox=data.get("sandbox", ""),
            backend=data.get("backend", ""),
            device=data.get("device", ""),
            metrics=dict(data.get("metrics", {})),
            student=data.get("student", ""),
            alias=str(data.get("alias", "")),
            submitted_at=str(data.get("submitted_at", "")),
        )
