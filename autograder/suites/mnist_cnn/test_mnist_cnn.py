"""Hidden checks for mnist_cnn: a small convolutional network for MNIST digits.

The suite loads MNIST itself, prepares the test images the way the notebook
asks (channel axis, pixels divided by 255) and recomputes every metric from
the student's exported model. At grading time the test accuracy is compared
with the accuracy on a private slice of training images the kernel was never
served (checks.check_test_set_unseen): a model clearly better on the test set
has seen it, and gets no accuracy points. Thresholds come from running the
reference solution over several seeds (see the assignment's test file).
"""

import numpy as np
import pytest

from autograder.checks import (
    check_input_shape,
    check_parameter_budget,
    check_softmax_over,
    check_test_set_unseen,
    count_layers,
    grade_by_threshold,
    largest_layer,
    model_fixture,
    predict,
)
from autograder.datasets import mnist

PARAMETER_BUDGET = 250_000
WORKSHOP_PARAMETERS = 2_174_442
TARGET_ACCURACY = 0.985
PARTIAL_ACCURACY = 0.97
SAMPLE = 256
DIGITS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def test_set():
    _, (x_test, y_test) = mnist.load_data()
    return x_test, y_test


@pytest.fixture(scope="module")
def scaled_test_images(test_set):
    x_test, _ = test_set
    return x_test.reshape(-1, 28, 28, 1).astype("float32") / 255


model = model_fixture("model")


@pytest.fixture(scope="module")
def test_predictions(model, scaled_test_images):
    return predict(model, scaled_test_images, what="the scaled MNIST test images")


@pytest.mark.points(1)
def test_images_prepared(artifacts, test_set):
    """x_test has a channel axis and pixel values scaled to [0, 1]."""
    x_test, _ = test_set
    got = artifacts.array("x_test")
    assert got.shape == (10000, 28, 28, 1), (
        f"`x_test` has shape {got.shape}; it should be (10000, 28, 28, 1). Conv2D layers need "
        "a channel axis: reshape the images with x_test_raw.reshape(-1, 28, 28, 1)."
    )
    assert np.issubdtype(got.dtype, np.floating), (
        f"`x_test` holds {got.dtype} values; convert it with .astype('float32') before dividing "
        "by 255, so the pixels become fractions between 0 and 1."
    )
    biggest = float(np.max(got))
    assert biggest <= 1.0 + 1e-6 and float(np.min(got)) >= 0.0, (
        f"The pixel values of `x_test` go up to {biggest:g}; divide them by 255 so they lie "
        "between 0 and 1."
    )
    expected = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255
    assert np.allclose(got, expected, atol=1e-3), (
        "`x_test` does not hold the test images divided by 255 in their original order. Build it "
        "from x_test_raw with reshape(-1, 28, 28, 1), .astype('float32') and / 255, and do not "
        "shuffle or normalise it any other way."
    )


@pytest.mark.points(2)
def test_convolutional_layers(model):
    """The model stacks at least two Conv2D layers with MaxPooling2D."""
    convs = count_layers(model, "Conv2D")
    assert convs >= 2, (
        f"Your model has {convs} Conv2D layer{'s' if convs != 1 else ''}; use at least two. The "
        "first finds small pieces such as edges, a second one combines them into larger shapes."
    )
    pools = count_layers(model, "MaxPooling2D")
    assert pools >= 1, (
        "Your model has no MaxPooling2D layer. Put one after a Conv2D layer: it halves the height "
        "and width, which makes the following layers cheaper and lets them see more of the digit."
    )


@pytest.mark.points(2)
def test_output_is_probabilities(model, scaled_test_images):
    """The output has shape (None, 10) and every row is a probability distribution."""
    check_input_shape(model, (28, 28, 1), message=(
        "Your model was built for inputs of shape {shape}; MNIST images prepared for a CNN have "
        "the shape (28, 28, 1): use keras.Input(shape=(28, 28, 1))."
    ))

    def not_probabilities(activation, sums):
        named = f"uses `{activation}`" if activation and activation != "softmax" else "does not output probabilities"
        return (
            f"Your output layer {named}: its 10 outputs add up to between {sums.min():.2f} and "
            f"{sums.max():.2f} instead of 1. Use activation='softmax' in the last Dense layer, so "
            "the outputs form a probability distribution over the ten digits."
        )

    check_softmax_over(
        model, scaled_test_images[:SAMPLE], 10, what=f"{SAMPLE} test images",
        wrong_shape=lambda shape: (
            f"For {SAMPLE} images your model returns shape {shape}; it should return "
            f"({SAMPLE}, 10): one probability per digit. End with Dense(10, activation='softmax')."
        ),
        not_probabilities=not_probabilities,
        refuse=("sigmoid",),
    )


@pytest.mark.points(2)
def test_parameter_budget(model):
    """The model has at most 250,000 parameters."""

    def over_budget(params, budget):
        biggest = largest_layer(model, "Dense")
        hint = ""
        if biggest is not None:
            hint = (
                f" Your largest layer is `{biggest.name}` with {biggest.count_params():,} parameters: "
                "pool more before Flatten, or give the Dense layers fewer units."
            )
        workshop = (
            "as many as the 2018 workshop network" if params == WORKSHOP_PARAMETERS
            else f"the 2018 workshop network has {WORKSHOP_PARAMETERS:,}"
        )
        return (
            f"Your model has {params:,} parameters; the budget is {budget:,} ({workshop}, "
            f"almost all of them in its Dense layers).{hint}"
        )

    check_parameter_budget(model, PARAMETER_BUDGET, message=over_budget)


@pytest.mark.points(4)
def test_test_accuracy(model, test_predictions, test_set, feedback):
    """At least 99 % of the scaled test images are classified correctly."""
    _, y_test = test_set
    assert test_predictions.ndim == 2 and test_predictions.shape[1] == 10, (
        f"Your model returns predictions of shape {test_predictions.shape} for the test set; "
        "accuracy needs 10 outputs per image, one per digit."
    )
    accuracy = float(np.mean(np.argmax(test_predictions, axis=1) == y_test))
    feedback.metric("test_accuracy", accuracy)
    feedback.classification(y_test, np.argmax(test_predictions, axis=1), class_names=DIGITS)

    def private_accuracy(images, labels):
        scaled = images.reshape(-1, 28, 28, 1).astype("float32") / 255
        predictions = predict(model, scaled, what="training images prepared like the test set")
        return float(np.mean(np.argmax(predictions, axis=1) == labels))

    check_test_set_unseen("mnist", accuracy, len(y_test), private_accuracy, feedback)
    grade_by_threshold(
        accuracy, full=TARGET_ACCURACY, partial=PARTIAL_ACCURACY,
        partial_message=(
            f"Your model classifies {accuracy:.2%} of the test digits correctly; the target is "
            f"{TARGET_ACCURACY:.1%}. Train for another epoch or two, or add filters to the "
            "second Conv2D layer."
        ),
        message=(
            f"Your model classifies only {accuracy:.2%} of the test digits correctly; the target is "
            f"{TARGET_ACCURACY:.1%}. Check that it was trained on images scaled to [0, 1] (the grader "
            "tests it on such images), that training ran for a few epochs over all the training images, "
            "and that the loss went down."
        ),
    )
