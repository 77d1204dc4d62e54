"""Hidden checks for linear_grading: a linear Keras model that grades students.

Thresholds come from measuring the reference solution over several seeds
(docs/thresholds.md); the suite recomputes every metric on grading.npz, which
it loads itself.
"""

import numpy as np
import pytest

from autograder.checks import (
    check_input_shape,
    check_parameter_count,
    check_single_linear_unit,
    grade_by_threshold,
    model_fixture,
    predict,
    weighted_layers,
)
from autograder.datasets import grading

MAX_TRAINING_MSE = 0.30
TARGET_ACCURACY = 0.62
PARTIAL_ACCURACY = 0.55
GRADES = [str(g) for g in range(6)]  # whole grades 0-5: the classes of the rounded predictions


@pytest.fixture(scope="module")
def data():
    return grading.load_data()


model = model_fixture("model")


@pytest.fixture(scope="module")
def predictions(model, data):
    x, _ = data
    return predict(model, x, what="the course points x").reshape(len(x), -1)


@pytest.mark.points(1)
def test_data_summary(artifacts, data):
    """x_mean, x_min and x_max hold each part's statistics."""
    x, _ = data
    for name, expected in (
        ("x_mean", x.mean(axis=0)),
        ("x_min", x.min(axis=0)),
        ("x_max", x.max(axis=0)),
    ):
        got = np.asarray(artifacts.array(name), dtype="float64").ravel()
        assert got.shape == (3,), (
            f"`{name}` should hold one value per course part (3 values), but it has "
            f"{got.size}. Use axis=0 to reduce over the students, not over the parts."
        )
        assert np.allclose(got, expected, rtol=1e-4), (
            f"`{name}` does not match the data: expected about {np.round(expected, 2)}, "
            f"got {np.round(got, 2)}."
        )


@pytest.mark.points(2)
def test_model_is_linear(model):
    """The model is one Dense layer with one unit and a linear activation."""
    check_single_linear_unit(
        model,
        layer_count="Your model has {count} layers with weights; a linear model has exactly "
                    "one Dense layer. Hidden layers make it a neural network that is no longer linear.",
        layer_kind="Your model's layer is a {kind}; use keras.layers.Dense.",
        units="Your Dense layer has {units} units; one unit gives the one grade per student.",
        activation="Your Dense layer uses the {activation!r} activation; a linear model needs "
                   "activation=None (the default), so the output is w . x + b.",
    )


@pytest.mark.points(1)
def test_input_output_shapes_and_parameters(model):
    """Inputs (None, 3) map to outputs (None, 1) with 4 parameters."""
    sample = np.zeros((2, 3), dtype="float32")
    out = predict(model, sample, what="two students' points")
    assert out.shape == (2, 1), (
        f"For 2 students your model returns shape {out.shape}; it should return (2, 1): "
        "one grade per student."
    )
    check_input_shape(model, (3,), message=(
        "Your model was built for inputs of shape {shape}; each student has 3 points, so "
        "use keras.Input(shape=(3,))."
    ))
    check_parameter_count(model, 4, message=(
        "Your model has {params} parameters; a linear model on 3 inputs has 4: "
        "3 weights and a bias."
    ))


@pytest.mark.points(2)
def test_training_loss(predictions, data, feedback):
    """The trained model's mean squared error on grading.npz is low."""
    _, y = data
    mse = float(np.mean((predictions[:, :1] - y) ** 2))
    feedback.metric("training_mse", mse)
    feedback.regression(y, predictions[:, 0], label="grade")
    assert np.isfinite(mse), (
        "Your model predicts NaN or infinity: training diverged. Lower the SGD "
        "learning rate (try 0.003) and train again."
    )
    assert mse <= MAX_TRAINING_MSE, (
        f"Your model's mean squared error on the data is {mse:.3f}; it should be at most "
        f"{MAX_TRAINING_MSE}. Train for more epochs, or try a smaller batch size so each "
        "epoch makes more updates."
    )


@pytest.mark.points(3)
def test_rounded_grade_accuracy(predictions, data, feedback):
    """Rounded predictions match the true grades often enough."""
    _, y = data
    accuracy = float(np.mean(np.round(predictions[:, :1]) == y))
    rounded = np.round(predictions[:, 0])
    on_scale = np.isfinite(rounded) & (rounded >= 0) & (rounded < len(GRADES))
    feedback.metric("rounded_grade_accuracy", accuracy)
    # A rounded grade off the 0-5 scale (or NaN) becomes -1: outside every class, never right.
    feedback.classification(y, np.where(on_scale, rounded, -1), class_names=GRADES)
    grade_by_threshold(
        accuracy, full=TARGET_ACCURACY, partial=PARTIAL_ACCURACY,
        partial_message=(
            f"Rounded to whole grades, your model grades {accuracy:.1%} of the students "
            f"correctly; the target is {TARGET_ACCURACY:.0%}. More epochs will get you there."
        ),
        message=(
            f"Rounded to whole grades, your model grades only {accuracy:.1%} of the students "
            f"correctly; the target is {TARGET_ACCURACY:.0%}. Check that the model was trained "
            "and that the loss went down."
        ),
    )


@pytest.mark.points(1)
def test_weights_make_sense(model):
    """Every part's weight is positive: more points never lower a grade."""
    kernel = np.asarray(weighted_layers(model)[0].get_weights()[0]).ravel()
    assert kernel.size == 3, (
        f"Expected 3 weights, one per course part, but your model has {kernel.size}."
    )
    assert np.all(kernel > 0), (
        f"Your weights are {np.round(kernel, 3)}; in a sensible grading every part's "
        "weight is positive, since more points should never lower a grade. Train longer."
    )
