"""linear_grading graded end to end: wrong answers and partial credit,
through the real engine and a real kernel. The reference and the blank
release are graded in tests/test_every_assignment.py, as for every
assignment; tampered and broken notebooks are the adversarial corpus
(tests/test_adversarial.py)."""

import pytest

from autograder.results import Status
from conftest import (
    LINEAR_MODEL as LINEAR,
    LINEAR_POINTS,
    LINEAR_SUMMARY as SUMMARY,
    by_name,
    failing,
    grade_with_cli,
    make_submission,
)

pytestmark = pytest.mark.slow

A = "linear_grading"
POINTS = LINEAR_POINTS

TRAIN = (
    "model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.003), loss='mse')\n"
    "history = model.fit(x, y, epochs={epochs}, batch_size=16, verbose=0)"
)


def wrong(tmp_path_factory, name, answers, **kw):
    return make_submission(tmp_path_factory.mktemp(name) / f"{A}.ipynb", A, answers, **kw)


def test_reference_records_its_training_mse_and_grade_accuracy(reference_cli):
    results, _ = reference_cli(A)
    assert set(results["metrics"]) == {"training_mse", "rounded_grade_accuracy"}


def test_blank_release_says_the_model_is_missing(blank_release):
    assert "does not define `model`" in by_name(blank_release(A))["test_model_is_linear"].output


def test_hidden_layer_loses_the_linearity_points(grade, tmp_path_factory):
    nb = wrong(tmp_path_factory, "hidden_layer", {
        "summary": SUMMARY,
        "build_model": "model = keras.Sequential([keras.Input(shape=(3,)), "
                       "keras.layers.Dense(8, activation='relu'), keras.layers.Dense(1)])",
        "train": TRAIN.format(epochs=1),
    })
    result = grade(nb, A)
    checks = by_name(result)
    assert {"test_model_is_linear", "test_input_output_shapes_and_parameters",
            "test_weights_make_sense"} <= failing(result)
    assert "2 layers with weights" in checks["test_model_is_linear"].output
    assert "41 parameters" in checks["test_input_output_shapes_and_parameters"].output
    assert result.score == sum(t.score for t in result.tests)
    assert checks["test_data_summary"].status is Status.PASS


def test_untrained_model_fails_loss_and_accuracy(grade, tmp_path_factory):
    nb = wrong(tmp_path_factory, "untrained", {
        "summary": SUMMARY,
        "build_model": LINEAR,
        "train": "model.compile(optimizer='sgd', loss='mse')\nhistory = None",
    })
    result = grade(nb, A)
    checks = by_name(result)
    assert checks["test_model_is_linear"].status is Status.PASS
    assert checks["test_input_output_shapes_and_parameters"].status is Status.PASS
    assert checks["test_training_loss"].status is Status.FAIL
    assert "Train for more epochs" in checks["test_training_loss"].output
    assert checks["test_rounded_grade_accuracy"].score == 0
    assert result.score == sum(POINTS[n] for n, t in checks.items() if t.status is Status.PASS)


def test_model_on_the_wrong_input_shape_fails_every_check_that_needs_predictions(grade, tmp_path_factory):
    nb = wrong(tmp_path_factory, "wrong_input", {
        "summary": SUMMARY,
        "build_model": "model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])",
        "train": TRAIN.format(epochs=1).replace("fit(x,", "fit(x[:, :2],"),
    })
    result = grade(nb, A)
    assert failing(result) == {
        "test_input_output_shapes_and_parameters", "test_training_loss",
        "test_rounded_grade_accuracy", "test_weights_make_sense",
    }
    assert result.score == POINTS["test_data_summary"] + POINTS["test_model_is_linear"]
    message = by_name(result)["test_training_loss"].output
    assert "built for inputs of shape (None, 2)" in message


def test_partial_accuracy_earns_half_the_accuracy_points(grade, linear_partial_submission):
    result = grade(linear_partial_submission, A)
    accuracy = by_name(result)["test_rounded_grade_accuracy"]
    assert accuracy.status is Status.FAIL and accuracy.score == 1.5
    assert "57.6%" in accuracy.output
    assert failing(result) == {"test_training_loss", "test_rounded_grade_accuracy"}
    assert result.score == 6.5


def test_unreadable_submission_is_graded_zero_with_a_message(tmp_path, read_json):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{ not json")
    out = tmp_path / "results.json"
    completed = grade_with_cli(bad, A, out)
    assert completed.returncode == 0, completed.stderr
    assert "not valid notebook JSON" in completed.stdout
    results = read_json(out)
    assert results["score"] == 0
    assert {t["status"] for t in results["tests"]} == {"not-attempted"}
