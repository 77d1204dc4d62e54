"""Hidden checks for mnist_mlp: an MLP with a softmax output on MNIST.

The suite loads MNIST itself, scales the test images to [0, 1] (x / 255, as
the notebook instructs) and feeds them in whichever shape the model declares,
(28, 28) or (784,). Labels may have been integers or one-hot during training:
accuracy is the argmax of the outputs against the integer test labels.
At grading time the accuracy on the test set is compared with the accuracy
on a private slice of training images the kernel was never served
(checks.check_test_set_unseen): a model clearly better on the test set has
seen it, and gets no accuracy points.
Thresholds come from the reference solution over five seeds: test accuracy
0.9795-0.9814 after 10 epochs (22-26 s of CPU on two cores); an untrained
model scores about 0.1-0.2, and one trained on raw 0-255 pixels about 0.44 on
scaled test images but 0.92 on raw ones.
"""

import numpy as np
import pytest

from autograder.checks import (
    check_input_shape,
    check_parameter_budget,
    check_reported_loss,
    check_test_set_unseen,
    declared_input_shape,
    grade_by_threshold,
    layer_activation,
    mean_crossentropy,
    model_fixture,
    predict,
    reported_loss_agrees,
    weighted_layers,
)
from autograder.datasets import mnist, served

MAX_PARAMETERS = 300_000
TARGET_ACCURACY = 0.975
PARTIAL_ACCURACY = 0.95
CHANCE_LEVEL = 0.3        # below this the model has learned next to nothing
UNSCALED_MARGIN = 0.10    # raw pixels beat scaled ones by this much: trained unscaled
N_TEST = 10_000
DIGITS = [str(d) for d in range(10)]
N_VAL = 5_000             # the notebook keeps the last 5,000 training images it gets for validation
LOSS_SAMPLE = 10_000      # images of x_fit, the others, the final loss in `history` is checked on
# history's last loss / the model's cross-entropy on the sample: the band a
# real History of this model falls in (benchmarks/history_tolerance.py).
HISTORY_LOSS_BAND = (0.5, 4.0)


@pytest.fixture(scope="module")
def data():
    _, (x_test, y_test) = mnist.load_data()
    return x_test.astype("float32") / 255, y_test.astype("int64"), x_test.astype("float32")


model = model_fixture("model")


def as_model_input(model, images):
    """The images in the shape the model declares: (N, 28, 28) or (N, 784)
    (any declared shape with 784 values per image is accepted)."""
    shape = declared_input_shape(model)
    if shape is not None and len(shape) > 1 and all(isinstance(d, int) for d in shape[1:]):
        if int(np.prod(shape[1:])) == 28 * 28:
            return images.reshape((len(images), *shape[1:]))
    return images


@pytest.fixture(scope="module")
def outputs(model, data):
    x, _, _ = data
    out = predict(model, as_model_input(model, x), what="the 10,000 test images scaled to [0, 1]")
    assert out.shape == (N_TEST, 10), (
        f"For the {N_TEST:,} test images your model returns shape {out.shape}; it should return "
        f"({N_TEST}, 10): one probability per digit. End the model with Dense(10, activation=\"softmax\")."
    )
    return out.astype("float64")


def accuracy(outputs, labels):
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


@pytest.mark.points(1)
def test_input_and_output_shapes(model, data):
    """The model takes (None, 28, 28) or (None, 784) and returns (None, 10)."""
    check_input_shape(model, (28, 28), (784,), message=(
        "Your model was built for inputs of shape {shape}. Use keras.Input(shape=(28, 28)) "
        "followed by keras.layers.Flatten(), or flatten the images yourself and use "
        "keras.Input(shape=(784,))."
    ))
    x, _, _ = data
    out = predict(model, as_model_input(model, x[:2]), what="two test images")
    assert out.shape == (2, 10), (
        f"For 2 images your model returns shape {out.shape}, so its output is "
        f"{(None, *out.shape[1:])}; it should be (None, 10): one output per digit. "
        "End the model with Dense(10, activation=\"softmax\")."
    )


@pytest.mark.points(2)
def test_outputs_are_probabilities(model, outputs):
    """Every output row is non-negative and sums to 1 (a softmax output)."""
    assert np.all(np.isfinite(outputs)), (
        "Your model outputs NaN or infinite values: training diverged. Lower the learning rate "
        "and check that the pixels are scaled to [0, 1]."
    )
    sums = outputs.sum(axis=1)
    if outputs.min() >= -1e-6 and np.all(np.abs(sums - 1) <= 1e-3):
        return
    last = weighted_layers(model)[-1] if weighted_layers(model) else None
    activation = layer_activation(last) if last is not None else None
    if activation == "sigmoid":
        raise AssertionError(
            "Your output layer uses `sigmoid` over 10 classes: each output is squeezed into (0, 1) "
            f"on its own, and your rows add up to between {sums.min():.2f} and {sums.max():.2f}. "
            "Use `softmax` so that the outputs form a probability distribution over the digits."
        )
    if activation in (None, "linear"):
        raise AssertionError(
            "Your model outputs raw scores (logits), not probabilities: the rows have values from "
            f"{outputs.min():.2f} to {outputs.max():.2f} and do not add up to 1. Give the output "
            "layer activation=\"softmax\" (and if you compiled with from_logits=True, drop that)."
        )
    raise AssertionError(
        "Your model's outputs are not probabilities: each row should be non-negative and add up "
        f"to 1, but yours range from {outputs.min():.2f} to {outputs.max():.2f} and add up to "
        f"between {sums.min():.2f} and {sums.max():.2f}. End the model with "
        "Dense(10, activation=\"softmax\")."
    )


@pytest.mark.points(1)
def test_parameter_budget(model):
    """The model has at most 300,000 parameters."""
    check_parameter_budget(model, MAX_PARAMETERS, message=(
        "Your model has {params:,} parameters; the budget is {budget:,}. A Dense layer "
        "with n inputs and u units has (n + 1) * u parameters, so the first hidden layer, on 784 "
        "pixels, costs 785 per unit: use fewer units (for example 256) or fewer layers."
    ))


def training_sample():
    """A fixed sample of `x_fit`, the images the notebook trains on: the
    training images the kernel was served (all but the private slice, when
    the grader held one back) without the last 5,000. Returned as (scaled to
    [0, 1], integer labels, raw pixels)."""
    (x_train, y_train), _ = mnist.load_data()
    fit_rows = served.served_rows("mnist", served.holdout_seed_from_env())[:-N_VAL]
    rows = np.sort(np.random.default_rng(0).choice(fit_rows, LOSS_SAMPLE, replace=False))
    raw = x_train[rows].astype("float32")
    return raw / 255, y_train[rows].astype("int64"), raw


def training_loss(model, images, labels, what):
    """The model's cross-entropy, the loss the notebook teaches, on ``images``."""
    out = predict(model, as_model_input(model, images), what=what)
    assert out.shape == (len(images), 10), (
        f"For {len(images):,} training images your model returns shape {out.shape}, so the "
        "grader cannot compute its loss; it should return one probability per digit, (N, 10)."
    )
    return mean_crossentropy(out, labels)


@pytest.mark.points(1)
def test_training_loss_decreases(artifacts):
    """The training loss in `history` went down, and it is the loss of `model`."""
    history = artifacts.history("history")
    loss = history.get("loss")
    assert loss, (
        "`history` has no training loss. Keep what model.fit(...) returns: history = model.fit(...)."
    )
    assert len(loss) >= 2, (
        f"`history` covers {len(loss)} epoch; train for several epochs so the loss curve shows learning."
    )
    assert np.all(np.isfinite(loss)), (
        "The training loss became NaN or infinite: training diverged. Lower the learning rate and "
        "check that the pixels are scaled to [0, 1]."
    )
    assert loss[-1] < loss[0], (
        f"The training loss went from {loss[0]:.3f} in the first epoch to {loss[-1]:.3f} in the "
        "last: it did not decrease. Lower the learning rate, and check that labels and loss match."
    )
    model = artifacts.model("model")  # after the history: its absence is what a blank notebook hears
    x, y, raw = training_sample()
    scaled = training_loss(model, x, y, f"{LOSS_SAMPLE:,} training images scaled to [0, 1]")
    if not reported_loss_agrees(loss[-1], scaled, within=HISTORY_LOSS_BAND):
        # Trained on raw pixels, the history is genuine; test_test_accuracy asks to scale.
        unscaled = training_loss(model, raw, y, f"{LOSS_SAMPLE:,} raw training images")
        if reported_loss_agrees(loss[-1], unscaled, within=HISTORY_LOSS_BAND):
            return
    check_reported_loss(
        loss[-1], scaled, within=HISTORY_LOSS_BAND,
        data=f"{LOSS_SAMPLE:,} of the training images (`x_fit`), scaled to [0, 1]",
        hint="If you trained on only part of `x_fit`, train on all of it: the grader measures "
             "the loss on images from all of it.",
    )


@pytest.mark.points(5)
def test_test_accuracy(model, outputs, data, feedback):
    """Accuracy on the 10,000 test images, scaled to [0, 1], reaches the target."""
    _, y, raw = data
    acc = accuracy(outputs, y)
    feedback.metric("test_accuracy", acc)
    feedback.classification(y, np.argmax(outputs, axis=1), class_names=DIGITS)

    def private_accuracy(images, labels):
        scaled = as_model_input(model, images.astype("float32") / 255)
        return accuracy(predict(model, scaled, what="training images scaled to [0, 1]"), labels)

    check_test_set_unseen("mnist", acc, N_TEST, private_accuracy, feedback)

    def shortfall():
        message = (
            f"On the {N_TEST:,} test images, scaled to [0, 1] with x / 255, your model is right "
            f"{acc:.1%} of the time; the target is {TARGET_ACCURACY:.1%}. "
        )
        raw_acc = accuracy(predict(model, as_model_input(model, raw), what="the raw test images"), y)
        if raw_acc >= acc + UNSCALED_MARGIN:
            return message + (
                f"On raw pixels (0 to 255) it does much better ({raw_acc:.1%}): it was trained on "
                "unscaled images. Divide the training images by 255, as part 1 says, and train again."
            )
        if acc < CHANCE_LEVEL:
            return message + (
                "That is close to guessing (10%): the model looks untrained. Did model.fit run without "
                "an error? sparse_categorical_crossentropy needs integer labels of shape (N,), "
                "categorical_crossentropy one-hot labels of shape (N, 10)."
            )
        return message + (
            "Train for more epochs, or give the hidden layers more units within the parameter budget."
        )

    grade_by_threshold(acc, full=TARGET_ACCURACY, partial=PARTIAL_ACCURACY, message=shortfall)
