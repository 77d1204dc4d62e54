"""Hidden checks for toy_functions: a regression network and a binary
classifier for y = sin(x_1^2 + ... + x_10^2), inputs uniform in [0, 1).

The notebook trains on 10,000 points it generates from a seed it fixes. This
suite never uses those points: it draws FRESH points of its own from a seed
the student never sees (the course's holdout seed when the grader sets
AUTOGRADER_HOLDOUT_SEED, else a random one), mixed with a constant of this
assignment, and measures the models there. Both models see exactly the same
fresh points. Thresholds come from the reference recipe over ten seeds
(benchmarks/toy_functions_thresholds.py, docs/thresholds.md): mean squared
error 0.0052-0.0144 and accuracy 0.934-0.964 on fresh points, where always
answering the commoner class ("y < 0") is right 56-57% of the time. The
lecture's first recipe (plain SGD, 10 epochs) reaches MSE 0.057-0.071 (half
points) and accuracy 0.878-0.918 (full points).
"""

import secrets
from types import SimpleNamespace

import numpy as np
import pytest

from autograder.checks import (
    check_input_shape,
    check_parameter_budget,
    flat_layers,
    grade_by_threshold,
    layer_activation,
    model_fixture,
    predict,
)
from autograder.datasets import served

N_INPUTS = 10
N_FRESH = 20_000          # fresh points drawn by the grader
SEED_SALT = 0x70F_F0C5    # this assignment's constant, mixed with the course's seed
MAX_PARAMETERS = 5_000    # per model; the reference networks have 1,441
MAX_MSE = 0.03            # full points
PARTIAL_MSE = 0.10        # half the points
TARGET_ACCURACY = 0.85    # full points
PARTIAL_ACCURACY = 0.75   # half the points
MAJORITY_MARGIN = 0.10    # accuracy must beat always answering the commoner class by this much
CLASS_NAMES = ["y < 0", "y >= 0"]
NONLINEAR_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "PReLU": "prelu",
                    "ELU": "elu", "Softmax": "softmax"}
SQUASHING = {"sigmoid", "tanh", "softmax", "hard_sigmoid", "softsign", "hard_tanh"}


# ---------------------------------------------------------------- fresh points


def fresh_seed() -> int:
    """The course's holdout seed when the grader passes one, else a random one."""
    seed = served.holdout_seed_from_env()
    return secrets.randbits(63) if seed is None else seed


def fresh_points(seed: int, n: int = N_FRESH):
    """``n`` points drawn as the notebook draws its own (ten inputs uniform in
    [0, 1)), from ``seed`` mixed with this assignment's constant, and their
    targets y = sin(sum of squares)."""
    rng = np.random.default_rng([seed, SEED_SALT])
    x = rng.random((n, N_INPUTS)).astype("float32")
    y = np.sin(np.sum(np.square(x.astype("float64")), axis=1))
    return x, y


@pytest.fixture(scope="module")
def fresh():
    x, y = fresh_points(fresh_seed())
    labels = (y >= 0).astype("int64")
    return SimpleNamespace(x=x, y=y, labels=labels,
                           majority=float(max(labels.mean(), 1 - labels.mean())))


regression_model = model_fixture("regression_model")
classifier_model = model_fixture("classifier_model")


def one_output_per_point(model, name, fresh):
    """The model's outputs on the fresh points, as one column."""
    out = predict(model, fresh.x, what=f"{N_FRESH:,} fresh points of {N_INPUTS} inputs")
    out = out.reshape(len(fresh.x), -1)
    assert out.shape[1] == 1, (
        f"For {N_FRESH:,} points `{name}` returns {out.shape[1]} values per point; it should "
        "return one. End it with a Dense layer of one unit."
    )
    return out[:, 0].astype("float64")


@pytest.fixture(scope="module")
def regression_out(regression_model, fresh):
    return one_output_per_point(regression_model, "regression_model", fresh)


@pytest.fixture(scope="module")
def classifier_out(classifier_model, fresh):
    return one_output_per_point(classifier_model, "classifier_model", fresh)


# ---------------------------------------------------------------- structure


def output_activation(model):
    """The activation the model applies last: that of the last layer that has
    one (a Dense layer's, an Activation layer's, or a ReLU-like layer's);
    layers without one (Dropout, Flatten) are looked through. ``None`` when
    no layer has one."""
    for layer in reversed(flat_layers(model)):
        kind = type(layer).__name__
        if kind in NONLINEAR_LAYERS:
            return NONLINEAR_LAYERS[kind]
        activation = layer_activation(layer)
        if activation is not None:
            return activation
    return None


def check_shapes(model, name):
    check_input_shape(model, (N_INPUTS,), message=lambda shape: (
        f"`{name}` was built for inputs of shape {shape}; every point has {N_INPUTS} inputs "
        f"x_1 ... x_{N_INPUTS}, so start the model with keras.Input(shape=({N_INPUTS},))."
    ))
    out = predict(model, np.zeros((2, N_INPUTS), dtype="float32"), what="two points")
    assert out.shape == (2, 1), (
        f"For 2 points `{name}` returns shape {out.shape}, so its output is "
        f"{(None, *out.shape[1:])}; it should be (None, 1): one number per point. End the model "
        "with a Dense layer of one unit."
    )


def check_budget(model, name):
    check_parameter_budget(model, MAX_PARAMETERS, message=lambda params, budget: (
        f"`{name}` has {params:,} parameters; the budget is {budget:,}. A Dense layer "
        "with n inputs and u units has (n + 1) * u parameters, so two hidden layers of 32 units "
        f"cost 11 * 32 + 33 * 32 = 1,408 and the output 33 more. A smooth function of {N_INPUTS} "
        "inputs needs no more than that: use fewer or narrower hidden layers."
    ))


# ---------------------------------------------------------------- part 1: regression


@pytest.mark.points(1)
def test_regression_model_shapes(regression_model):
    """regression_model maps inputs (None, 10) to outputs (None, 1)."""
    check_shapes(regression_model, "regression_model")


@pytest.mark.points(1)
def test_regression_output_is_linear(regression_model):
    """regression_model's last layer has no activation: its output can take any value."""
    activation = output_activation(regression_model)
    if activation in (None, "linear"):
        return
    if activation in ("relu", "leaky_relu", "elu", "softplus", "selu", "gelu", "silu",
                      "swish", "relu6", "exponential"):
        why = ("it can hardly output negative numbers, yet y = sin(...) is negative for more "
               "than half of the points")
    elif activation in SQUASHING:
        why = ("it squeezes every prediction into a fixed range, and its flat ends make learning "
               "slow exactly where sin(...) reaches -1 and 1; a regression network should not "
               "be told the range of its target")
    else:
        why = "it bends the prediction, which the hidden layers are there for"
    raise AssertionError(
        f"The last layer of `regression_model` applies the {activation!r} activation: {why}. "
        "In regression the output layer is Dense(1) with no activation (the default, linear), "
        "so the network can predict any real number; keep the activations for the hidden layers."
    )


@pytest.mark.points(1)
def test_regression_parameter_budget(regression_model):
    """regression_model has at most 5,000 parameters."""
    check_budget(regression_model, "regression_model")


@pytest.mark.points(3)
def test_regression_mse(regression_model, regression_out, fresh, feedback):
    """regression_model's mean squared error on the grader's fresh points is low."""
    mse = float(np.mean((regression_out - fresh.y) ** 2))
    feedback.metric("fresh_mse", mse)
    feedback.regression(fresh.y, regression_out, label="y")
    assert np.isfinite(mse), (
        "`regression_model` predicts NaN or infinity on fresh points: training diverged. Lower "
        "the learning rate and train again."
    )

    def shortfall():
        baseline = float(np.var(fresh.y))
        message = (
            f"On {N_FRESH:,} fresh points the grader drew (not the points you trained on), "
            f"`regression_model` has a mean squared error of {mse:.4f}; the target is at most "
            f"{MAX_MSE}. Predicting the same value for every point would give about {baseline:.2f}. "
        )
        activation = output_activation(regression_model)
        if mse >= 0.5 * baseline:
            message += ("Your model has learned little of the function: check that it was trained "
                        "(model.fit on x_train and y_train) and that its loss went down. ")
        if activation not in (None, "linear"):
            message += (f"The {activation!r} activation on its last layer limits what it can predict: "
                        "remove it (see the check on the output layer).")
        elif mse < 0.5 * baseline:
            message += ("Train for more epochs, try the Adam optimizer, or widen the hidden layers "
                        "(within the budget), and watch the loss curve.")
        return message.strip()

    grade_by_threshold(mse, full=MAX_MSE, partial=PARTIAL_MSE, higher_is_better=False,
                       message=shortfall)


# ---------------------------------------------------------------- part 2: classification


@pytest.mark.points(1)
def test_classifier_model_shapes(classifier_model):
    """classifier_model maps inputs (None, 10) to outputs (None, 1)."""
    check_shapes(classifier_model, "classifier_model")


@pytest.mark.points(1)
def test_classifier_output_is_a_probability(classifier_model):
    """classifier_model ends with a sigmoid: its output is the probability that y >= 0."""
    activation = output_activation(classifier_model)
    if activation == "sigmoid":
        return
    if activation in (None, "linear"):
        why = ("its output is a raw score (a logit) that can be any real number, not a "
               "probability between 0 and 1")
    elif activation == "softmax":
        why = ("softmax over a single output is always exactly 1, whatever the input: it "
               "normalises the outputs against each other, and there is only one")
    else:
        why = "that does not turn the output into a probability between 0 and 1"
    raise AssertionError(
        f"The last layer of `classifier_model` applies the {activation!r} activation: {why}. "
        "A binary classifier ends with Dense(1, activation=\"sigmoid\"): the logistic function "
        "1 / (1 + exp(-z)) gives the probability of the class y >= 0, which is what the "
        "binary cross-entropy loss expects (compile with loss=\"binary_crossentropy\", without "
        "from_logits=True)."
    )


@pytest.mark.points(1)
def test_classifier_parameter_budget(classifier_model):
    """classifier_model has at most 5,000 parameters."""
    check_budget(classifier_model, "classifier_model")


def classifier_accuracy(classifier_out, fresh, feedback):
    predicted = (classifier_out >= 0.5).astype("int64")  # NaN counts as "y < 0"
    accuracy = float(np.mean(predicted == fresh.labels))
    feedback.metric("fresh_accuracy", accuracy)
    feedback.classification(fresh.labels, predicted, class_names=CLASS_NAMES)
    return accuracy, predicted


@pytest.mark.points(3)
def test_classifier_accuracy(classifier_model, classifier_out, fresh, feedback):
    """classifier_model labels the grader's fresh points correctly often enough."""
    accuracy, predicted = classifier_accuracy(classifier_out, fresh, feedback)

    def shortfall():
        message = (
            f"On {N_FRESH:,} fresh points the grader drew, `classifier_model` (probability >= 0.5 "
            f"read as y >= 0) is right for {accuracy:.1%}; the target is {TARGET_ACCURACY:.0%}. "
        )
        share = float(predicted.mean())
        activation = output_activation(classifier_model)
        if share in (0.0, 1.0):
            message += f"It answers {CLASS_NAMES[int(share)]!r} for every point: "
            return message + (
                "its last layer's activation, 'softmax', makes every output 1 (see the check on "
                "the output layer)." if activation == "softmax" else
                "it has not learned to tell the classes apart. Check that it was trained on the "
                "labels (y_train >= 0) with the binary cross-entropy loss.")
        if not np.all(np.isfinite(classifier_out)):
            return message + "It outputs NaN or infinity: training diverged; lower the learning rate."
        if activation != "sigmoid":
            return message + ("Its last layer has no sigmoid, so its outputs are not probabilities "
                              "and 0.5 is not their midpoint (see the check on the output layer).")
        return message + ("Train for more epochs, try the Adam optimizer, or widen the hidden "
                          "layers (within the budget).")

    grade_by_threshold(accuracy, full=TARGET_ACCURACY, partial=PARTIAL_ACCURACY, message=shortfall)


@pytest.mark.points(1)
def test_classifier_beats_the_majority_class(classifier_out, fresh, feedback):
    """classifier_model does clearly better than always answering the commoner class."""
    accuracy, predicted = classifier_accuracy(classifier_out, fresh, feedback)
    needed = fresh.majority + MAJORITY_MARGIN
    if accuracy >= needed:
        return
    commoner = CLASS_NAMES[int(fresh.labels.mean() >= 0.5)]
    always = float(np.mean(predicted == predicted[0])) if len(predicted) else 0.0
    same = (f" Yours answers {CLASS_NAMES[int(predicted[0])]!r} for {always:.0%} of the points."
            if always >= 0.95 else "")
    raise AssertionError(
        f"Answering {commoner!r} for every point, without looking at the inputs, is right for "
        f"{fresh.majority:.1%} of the fresh points; `classifier_model` is right for "
        f"{accuracy:.1%}. A classifier has to beat that by at least "
        f"{MAJORITY_MARGIN * 100:.0f} percentage points to show it learned something from the "
        f"inputs.{same} Accuracy alone can look good on unbalanced classes: always compare "
        "it with the majority class."
    )
