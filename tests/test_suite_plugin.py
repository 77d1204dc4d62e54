"""The suite plugin: points, outcomes and messages of hidden checks, run in a
real pytest subprocess exactly as the engine runs a hidden suite."""

import json
import textwrap

import numpy as np
import pytest

from autograder.engine.evaluate import EvaluationError, run_suite
from autograder.results import Status

SUITE = '''
import numpy as np
import pytest
from autograder.checks import partial_credit

@pytest.mark.points(2)
def test_passes(artifacts):
    """Answers is the right array."""
    assert artifacts.array("answers").sum() == 6

@pytest.mark.points(4)
def test_partial(artifacts):
    partial_credit(0.25, "A quarter of the way there.")

@pytest.mark.points(3)
def test_fails(artifacts):
    value = artifacts.array("answers")[0]
    assert value == 99, "The first answer should be 99: read the question again."

def test_errors(artifacts):
    {}["missing"]

@pytest.mark.points(5)
def test_needs_a_model(artifacts):
    artifacts.model("model")

def test_not_defined(artifacts):
    artifacts.array("never_defined")
'''


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("plugin")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_example.py").write_text(SUITE)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    np.save(artifacts / "answers.npy", np.array([1, 2, 3]))
    (artifacts / "export_log.json").write_text(json.dumps({
        "model": {"status": "invalid", "message": "`model` should be a Keras model, but it is a str."}
    }))
    checks = run_suite(suite, artifacts, tmp_path / "report.json", timeout=120)
    return {c.name: c for c in checks}


def test_each_outcome_is_its_own_status_with_its_points(results):
    summary = {name: (c.status, c.score, c.max_score) for name, c in results.items()}
    assert summary == {
        "test_passes": (Status.PASS, 2.0, 2.0),
        "test_partial": (Status.FAIL, 1.0, 4.0),
        "test_fails": (Status.FAIL, 0.0, 3.0),
        "test_errors": (Status.ERROR, 0.0, 1.0),
        "test_needs_a_model": (Status.NOT_ATTEMPTED, 0.0, 5.0),
        "test_not_defined": (Status.NOT_ATTEMPTED, 0.0, 1.0),
    }


def test_messages_teach_without_quoting_the_suite(results):
    assert results["test_fails"].output == "The first answer should be 99: read the question again."
    assert results["test_partial"].output == "A quarter of the way there."
    assert results["test_errors"].output.startswith("The check could not run on your work: KeyError")
    assert results["test_needs_a_model"].output == "`model` should be a Keras model, but it is a str."
    assert "does not define `never_defined`" in results["test_not_defined"].output
    assert results["test_passes"].description == "Answers is the right array."


def test_a_suite_that_cannot_be_collected_is_an_evaluation_error(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_broken.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(EvaluationError, match="could not run"):
        run_suite(suite, tmp_path, tmp_path / "report.json", timeout=120)


def test_pickled_arrays_are_refused(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_pickle.py").write_text(textwrap.dedent('''
        def test_reads(artifacts):
            artifacts.array("sneaky")
    '''))
    np.save(tmp_path / "sneaky.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (check,) = run_suite(suite, tmp_path, tmp_path / "report.json", timeout=120)
    assert check.status is Status.ERROR
    assert "allow_pickle" in check.output
