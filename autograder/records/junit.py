"""JUnit XML, the test report format CI systems read (GitLab, Jenkins,
GitHub Actions' test reporters).

One ``<testsuite>`` per submission, named ``student/assignment``; one
``<testcase>`` per check, with the assignment as its ``classname``. A check
that failed carries ``<failure>``, one that could not judge the work
``<error>``, one whose artifact was never produced ``<skipped>``; each with
the check's teaching message. Points travel as ``<properties>``: ``score``
and ``max_score`` on every test case and, summed, on every test suite.

Messages quote what students wrote, so text is cleaned of what XML 1.0
cannot hold (terminal colour codes, control characters) before
:mod:`xml.etree.ElementTree` escapes the rest.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from autograder.atomic import write_atomic
from autograder.records.common import points, student_label
from autograder.results import CheckResult, GradingResult, Status

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_OUTCOME = {
    Status.FAIL: "failure",
    Status.ERROR: "error",
    Status.NOT_ATTEMPTED: "skipped",
}


def xml_text(text: str) -> str:
    """``text`` without what XML 1.0 cannot represent: colour codes go,
    other forbidden characters become U+FFFD."""
    return _NOT_XML.sub("\ufffd", _ANSI.sub("", str(text)))


def _properties(parent: ET.Element, values: dict[str, str]) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=xml_text(value))


def _testcase(suite: ET.Element, assignment: str, check: CheckResult) -> None:
    case = ET.SubElement(suite, "testcase", classname=xml_text(assignment), name=xml_text(check.name))
    _properties(case, {"score": points(check.score), "max_score": points(check.max_score)})
    outcome = _OUTCOME.get(check.status)
    if outcome is None:
        return
    message = xml_text(check.output or check.status.value)
    element = ET.SubElement(case, outcome, message=message)
    if outcome != "skipped":
        element.set("type", check.status.value)
    details = [message]
    if check.description:
        details.append(f"Check: {xml_text(check.description)}")
    details.append(f"Points: {points(check.score)} of {points(check.max_score)}")
    element.text = "\n".join(details)


def _counts(tests: list[CheckResult]) -> dict[str, str]:
    return {
        "tests": str(len(tests)),
        "failures": str(sum(t.status is Status.FAIL for t in tests)),
        "errors": str(sum(t.status is Status.ERROR for t in tests)),
        "skipped": str(sum(t.status is Status.NOT_ATTEMPTED for t in tests)),
    }


def to_junit(results: list[GradingResult]) -> str:
    """A JUnit XML document (as text, with its XML declaration) for ``results``,
    one test suite per submission in the order given."""
    every = [t for r in results for t in r.tests]
    root = ET.Element("testsuites", name="autograder", **_counts(every),
                      time=f"{sum(r.execution_time for r in results):.3f}")
    for result in results:
        suite = ET.SubElement(
            root, "testsuite",
            name=xml_text(f"{student_label(result)}/{result.assignment}"),
            **_counts(result.tests), time=f"{result.execution_time:.3f}",
        )
        _properties(suite, {
            "score": points(result.score), "max_score": points(result.max_score),
            "submission": result.submission,
        })
        for check in result.tests:
            _testcase(suite, result.assignment, check)
        if result.notes:
            ET.SubElement(suite, "system-out").text = xml_text("\n".join(result.notes))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, results: list[GradingResult]) -> None:
    """Write :func:`to_junit` to ``path`` atomically."""
    write_atomic(path, to_junit(results))
