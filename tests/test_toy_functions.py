"""toy_functions graded end to end: wrong answers, through the real engine
and a real kernel. The reference and the blank release are graded in
tests/test_every_assignment.py, as for every assignment (shared here through
the session fixtures). Three submissions are graded, each wrong in both
parts at once so that every check's failure is seen: none trains longer
than a few seconds, and each loses exactly the points of the checks it fails.

The suite's fresh points are drawn from a random seed at every grading, so
the scores asserted here hold whatever the draw: every wrong model below
lands far from a threshold (an untrained or one-class model), or, for the
classifier without its sigmoid, clearly above it (0.939-0.961 over ten seeds,
docs/thresholds.md)."""

import importlib.util
import warnings

import numpy as np
import pytest

from autograder.course import SUITES_DIR
from autograder.results import Status
from conftest import by_name, earned, failing, make_submission, planned_points

A = "toy_functions"
TARGET = "y_train = np.sin(np.sum(np.square(x_train), axis=1))"
LABELS = 'label_train = (y_train >= 0).astype("float32")\n'


def suite_module():
    """The hidden suite as a module, to test its fresh-point generator."""
    spec = importlib.util.spec_from_file_location("toy_functions_suite", SUITES_DIR / A / f"test_{A}.py")
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # its `points` marks belong to the grader's plugin
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        spec.loader.exec_module(module)
    return module


def network(first, last, hidden=(32, 32)):
    """Source of a Sequential model with ``first`` as its input shape and
    ``last`` as its output layer."""
    layers = "".join(f"    keras.layers.Dense({u}, activation='relu'),\n" for u in hidden)
    return f"keras.Sequential([\n    keras.Input(shape={first}),\n{layers}    {last},\n])"


@pytest.fixture(scope="module")
def graded(grade, tmp_path_factory):
    cache = {}

    def _graded(name, answers):
        if name not in cache:
            path = make_submission(tmp_path_factory.mktemp(name) / f"{A}.ipynb", A, {"target": TARGET, **answers})
            cache[name] = grade(path, A)
        return cache[name]

    return _graded


@pytest.fixture(scope="module")
def oversized_and_one_class(graded):
    """regression_model: 68,865 parameters, a tanh output, never trained.
    classifier_model: a sigmoid whose weights make it answer "y < 0" (the
    commoner class) for every point."""
    return graded("oversized_and_one_class", {
        "build_regression": "keras.utils.set_random_seed(0)\nregression_model = " + network(
            "(N_IN,)", "keras.layers.Dense(1, activation='tanh')", hidden=(256, 256)),
        "train_regression": "regression_model.compile(optimizer='adam', loss='mse')\n"
                            "regression_history = None",
        "build_classifier": LABELS + "classifier_model = " + network(
            "(N_IN,)", "keras.layers.Dense(1, activation='sigmoid')", hidden=())
            + "\nclassifier_model.set_weights([np.zeros((N_IN, 1)), np.array([-3.0])])",
        "train_classifier": "classifier_model.compile(optimizer='adam', loss='binary_crossentropy')\n"
                            "classifier_history = None",
    })


@pytest.fixture(scope="module")
def short_inputs_and_logits(graded):
    """regression_model: built for 5 inputs (and trained on the first five).
    classifier_model: the reference network without its sigmoid, trained on
    logits (from_logits=True) by the reference recipe."""
    return graded("short_inputs_and_logits", {
        "build_regression": "keras.utils.set_random_seed(0)\nregression_model = " + network(
            "(5,)", "keras.layers.Dense(1)"),
        "train_regression": "regression_model.compile(optimizer='adam', loss='mse')\n"
                            "regression_history = regression_model.fit(x_train[:, :5], y_train, "
                            "epochs=2, batch_size=64, verbose=0)",
        "build_classifier": LABELS + "keras.utils.set_random_seed(1)\nclassifier_model = " + network(
            "(N_IN,)", "keras.layers.Dense(1)"),
        "train_classifier": (
            "classifier_model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003),\n"
            "    loss=keras.losses.BinaryCrossentropy(from_logits=True), metrics=['accuracy'])\n"
            "classifier_history = classifier_model.fit(x_train, label_train, epochs=30, "
            "batch_size=64, verbose=0)"),
    })


@pytest.fixture(scope="module")
def relu_and_softmax(graded):
    """regression_model: relu on its output, so it cannot predict y < 0.
    classifier_model: softmax over its one output, which is always 1."""
    return graded("relu_and_softmax", {
        "build_regression": "keras.utils.set_random_seed(0)\nregression_model = " + network(
            "(N_IN,)", "keras.layers.Dense(1, activation='relu')"),
        "train_regression": "regression_model.compile(optimizer='adam', loss='mse')\n"
                            "regression_history = regression_model.fit(x_train, y_train, "
                            "epochs=5, batch_size=64, verbose=0)",
        "build_classifier": LABELS + "classifier_model = " + network(
            "(N_IN,)", "keras.layers.Dense(1, activation='softmax')"),
        "train_classifier": "classifier_model.compile(optimizer='adam', loss='binary_crossentropy')\n"
                            "classifier_history = classifier_model.fit(x_train, label_train, "
                            "epochs=1, batch_size=64, verbose=0)",
    })


# ---------------------------------------------------------------- the fresh points


def test_fresh_points_follow_the_course_seed_and_are_not_the_notebooks(monkeypatch):
    suite = suite_module()
    monkeypatch.setenv("AUTOGRADER_HOLDOUT_SEED", "2026")
    assert suite.fresh_seed() == 2026
    x, y = suite.fresh_points(2026)
    assert x.shape == (suite.N_FRESH, 10) and y.shape == (suite.N_FRESH,)
    assert np.allclose(y, np.sin(np.sum(x.astype("float64") ** 2, axis=1)))
    assert np.array_equal(x, suite.fresh_points(2026)[0])  # the same seed, the same points
    notebook = np.random.default_rng(2026).random((10_000, 10)).astype("float32")  # the notebook's points
    assert not (x[:100, None, :] == notebook[None, :, :]).all(axis=-1).any()
    monkeypatch.delenv("AUTOGRADER_HOLDOUT_SEED")
    assert suite.fresh_seed() != suite.fresh_seed()  # without a course seed: a random one each time


# ---------------------------------------------------------------- reference and blank


def test_reference_records_its_fresh_mse_and_accuracy(reference_cli):
    results, _ = reference_cli(A)
    suite = suite_module()
    assert set(results["metrics"]) == {"fresh_mse", "fresh_accuracy"}
    assert results["metrics"]["fresh_mse"] <= suite.MAX_MSE
    assert results["metrics"]["fresh_accuracy"] >= suite.TARGET_ACCURACY


def test_blank_release_says_which_model_is_missing(blank_release):
    checks = by_name(blank_release(A))
    assert "does not define `regression_model`" in checks["test_regression_mse"].output
    assert "does not define `classifier_model`" in checks["test_classifier_accuracy"].output


# ---------------------------------------------------------------- wrong submissions


def test_oversized_squashed_regression_and_one_class_classifier(oversized_and_one_class):
    result = oversized_and_one_class
    checks = by_name(result)
    assert failing(result) == {
        "test_regression_output_is_linear", "test_regression_parameter_budget", "test_regression_mse",
        "test_classifier_accuracy", "test_classifier_beats_the_majority_class",
    }
    assert result.score == earned(A, "test_regression_model_shapes", "test_classifier_model_shapes",
                                  "test_classifier_output_is_a_probability",
                                  "test_classifier_parameter_budget") == 4
    assert all(t.score == 0 and t.status is Status.FAIL for t in result.tests if t.name in failing(result))
    assert "'tanh' activation" in checks["test_regression_output_is_linear"].output
    assert "68,865 parameters; the budget is 5,000" in checks["test_regression_parameter_budget"].output
    assert "learned little of the function" in checks["test_regression_mse"].output
    assert "The 'tanh' activation on its last layer limits" in checks["test_regression_mse"].output
    assert "answers 'y < 0' for every point" in checks["test_classifier_accuracy"].output
    majority = checks["test_classifier_beats_the_majority_class"].output
    assert "Answering 'y < 0' for every point" in majority
    assert "Yours answers 'y < 0' for 100% of the points" in majority


def test_five_inputs_and_a_classifier_without_its_sigmoid(short_inputs_and_logits):
    result = short_inputs_and_logits
    checks = by_name(result)
    assert failing(result) == {
        "test_regression_model_shapes", "test_regression_mse", "test_classifier_output_is_a_probability",
    }
    assert result.score == sum(planned_points(A).values()) - earned(
        A, "test_regression_model_shapes", "test_regression_mse",
        "test_classifier_output_is_a_probability") == 8
    assert "built for inputs of shape (None, 5)" in checks["test_regression_model_shapes"].output
    assert "keras.Input(shape=(10,))" in checks["test_regression_model_shapes"].output
    assert "built for inputs of shape (None, 5)" in checks["test_regression_mse"].output
    output = checks["test_classifier_output_is_a_probability"].output
    assert "'linear' activation" in output and 'activation="sigmoid"' in output


def test_relu_regression_output_and_softmax_classifier(relu_and_softmax):
    result = relu_and_softmax
    checks = by_name(result)
    assert failing(result) == {
        "test_regression_output_is_linear", "test_regression_mse",
        "test_classifier_output_is_a_probability", "test_classifier_accuracy",
        "test_classifier_beats_the_majority_class",
    }
    assert result.score == 4
    assert "hardly output negative numbers" in checks["test_regression_output_is_linear"].output
    assert "softmax over a single output is always exactly 1" in (
        checks["test_classifier_output_is_a_probability"].output)
    assert "answers 'y >= 0' for every point: its last layer's activation, 'softmax'" in (
        checks["test_classifier_accuracy"].output)
    assert "The 'relu' activation on its last layer limits" in checks["test_regression_mse"].output
