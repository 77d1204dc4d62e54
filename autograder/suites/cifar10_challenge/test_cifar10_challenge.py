"""Hidden checks for cifar10_challenge: the open CIFAR-10 challenge.

Any Keras model may enter, within two rules the assignment declares in its
assignment.toml: a parameter budget (``[challenge] parameter_budget``, read
here) and a training-time limit (``[limits] notebook_timeout``: the grader
stops the notebook after that many seconds, measured outside the kernel, and
grades the model as it stood; nothing in this suite needs to time anything).

The suite loads CIFAR-10 itself and measures the model on the 10,000 test
images divided by 255. A model that does clearly better there than on the
private slice of training images the kernel was never served has seen the
test set and earns no accuracy points (checks.check_test_set_unseen). Points:
a pass mark for a working model (within the budget, at least FLOOR_ACCURACY),
then one point per accuracy band reached. ``test_accuracy`` is recorded only
for a model that keeps both rules, so only those reach the class leaderboard
(gradescope.LEADERBOARD, ``autograder leaderboard``); ``parameters`` is
recorded for every model that loads, as the leaderboard's first tie-break.
The floor and bands come from the reference over ten seeds
(benchmarks/cifar10_challenge_thresholds.py, docs/thresholds.md).
"""

import tomllib
from pathlib import Path

import numpy as np
import pytest

from autograder.checks import (
    check_input_shape,
    check_parameter_budget,
    check_softmax_over,
    check_test_set_unseen,
    count_layers,
    largest_layer,
    model_fixture,
    partial_credit,
    predict,
)
from autograder.datasets import cifar10

_CONFIG = tomllib.loads(Path(__file__).with_name("assignment.toml").read_text())
PARAMETER_BUDGET = int(_CONFIG["challenge"]["parameter_budget"])
FLOOR_ACCURACY = 0.40              # the pass mark: a model that works
BANDS = (0.55, 0.60, 0.65, 0.70)   # one point each
TARGET_ACCURACY = 0.70             # the last band: full marks
PASS_POINTS, BAND_POINTS = 2, 4
SAMPLE = 256
CLASS_NAMES = ["aeroplane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "lorry"]


def points_for(accuracy: float) -> float:
    """The points of the two accuracy checks for a model within the rules
    (the benchmark prints them per seed)."""
    reached = sum(accuracy >= band for band in BANDS)
    return (PASS_POINTS if accuracy >= FLOOR_ACCURACY else 0) + BAND_POINTS * reached / len(BANDS)


@pytest.fixture(scope="module")
def cifar():
    _, (x_test, y_test) = cifar10.load_data()
    return {"x_test": x_test.astype("float32") / 255, "y_test": y_test.ravel()}


model = model_fixture("model")


def over_budget(model, consequence: str = ""):
    """The over-budget message for ``model`` (fields ``params`` and ``budget``),
    with ``consequence`` after the count."""

    def say(params, budget):
        biggest = largest_layer(model)
        where = f" Its largest layer, `{biggest.name}`, has {biggest.count_params():,}." if biggest else ""
        return (
            f"Your model has {params:,} parameters; the challenge allows at most {budget:,}"
            f"{consequence}.{where} Shrink the image with pooling (or strided convolutions) before "
            "any Dense layer, use fewer filters, or end with GlobalAveragePooling2D instead of Flatten."
        )

    return say


class Entry:
    """The model as a challenge entry: its accuracy on the test set, computed
    once, and whether it keeps the rules. Whatever fails is raised inside the
    check that asks, so it fails that check with its message."""

    def __init__(self, model, cifar, feedback):
        self.model, self.cifar, self.feedback = model, cifar, feedback
        self.parameters = model.count_params()
        self._accuracy = None
        self._refusal = None

    def accuracy(self) -> float:
        if self._accuracy is None:
            predictions = predict(self.model, self.cifar["x_test"],
                                  what="the CIFAR-10 test images divided by 255")
            assert predictions.ndim == 2 and predictions.shape[1] == 10, (
                f"Your model returns predictions of shape {predictions.shape} for the test set; its "
                "accuracy needs 10 outputs per image, one per class (see the check on the model's "
                "input and output)."
            )
            predicted = np.argmax(predictions, axis=1)
            self._accuracy = float(np.mean(predicted == self.cifar["y_test"]))
            self.feedback.classification(self.cifar["y_test"], predicted, class_names=CLASS_NAMES)
        return self._accuracy

    def ranked_accuracy(self) -> float:
        """The test accuracy of a model that keeps the rules; raises the reason otherwise.
        Records ``test_accuracy`` (the leaderboard's metric) only then."""
        if self._refusal is None:
            self._refusal = self._judge()
        if self._refusal:
            raise AssertionError(self._refusal)
        return self._accuracy

    def _judge(self) -> str:
        accuracy = self.accuracy()
        if self.parameters > PARAMETER_BUDGET:
            consequence = (", so it earns no accuracy points and no place on the leaderboard (it "
                           f"classifies {accuracy:.1%} of the test images)")
            return over_budget(self.model, consequence)(self.parameters, PARAMETER_BUDGET)

        def private_accuracy(images, labels):
            found = predict(self.model, images.astype("float32") / 255,
                            what="training images divided by 255")
            return float(np.mean(np.argmax(found, axis=1) == labels.ravel()))

        try:
            check_test_set_unseen("cifar10", accuracy, len(self.cifar["y_test"]), private_accuracy,
                                  self.feedback)
        except AssertionError as seen:
            return str(seen)
        self.feedback.metric("test_accuracy", accuracy)
        return ""


@pytest.fixture(scope="module")
def entry(model, cifar, feedback):
    feedback.metric("parameters", model.count_params())
    return Entry(model, cifar, feedback)


def shortfall(entry, accuracy: float) -> str:
    """Why a model within the rules scores low, and what to try."""
    hints = []
    if accuracy < 0.2:
        hints.append(
            "That is close to guessing (10%). Check that the model was trained on the training "
            "images divided by 255 (the grader feeds it test images divided by 255, with no other "
            "preprocessing) and that its loss went down. If training was still running when the "
            "notebook reached its time limit, it was stopped there: the notes of your report say "
            "so, with the limit this grader set."
        )
    if count_layers(entry.model, "Conv2D") == 0:
        hints.append("Your model has no Conv2D layer: Dense layers alone rarely pass 50% on "
                     "CIFAR-10. Use convolutions and pooling.")
    elif accuracy >= 0.2:
        hints.append("Train for more epochs (within the time limit), add BatchNormalization after "
                     "the convolutions, or let the learning rate decay during training.")
    return " ".join(hints)


@pytest.mark.points(1)
def test_input_and_output(model, cifar):
    """The model takes (32, 32, 3) images and returns 10 class probabilities."""
    check_input_shape(model, (32, 32, 3), message=(
        "Your model was built for inputs of shape {shape}; CIFAR-10 images have the shape "
        "(32, 32, 3) and the grader feeds them as they are, divided by 255: start with "
        "keras.Input(shape=(32, 32, 3))."
    ))
    check_softmax_over(
        model, cifar["x_test"][:SAMPLE], 10, what=f"{SAMPLE} test images",
        wrong_shape=lambda shape: (
            f"For {SAMPLE} images your model returns shape {shape}; it should return ({SAMPLE}, 10), "
            "one probability per class: end with Dense(10, activation='softmax'). (The labels have "
            "shape (N, 1), so y_train.shape[1] is 1, not the number of classes.)"
        ),
        not_probabilities=lambda activation, sums: (
            f"Your model's 10 outputs add up to between {sums.min():.2f} and {sums.max():.2f} instead of 1"
            + (f" (the last layer uses `{activation}`)" if activation else "")
            + ". End with Dense(10, activation='softmax') so the outputs are class probabilities; "
            "a model trained on logits (from_logits=True) can take a softmax on top before you hand it in."
        ),
    )


@pytest.mark.points(1)
def test_parameter_budget(model, entry):
    """The model keeps the challenge's parameter budget (assignment.toml)."""
    check_parameter_budget(model, PARAMETER_BUDGET, message=over_budget(model))


@pytest.mark.points(PASS_POINTS)
def test_working_model(entry):
    """Pass mark: a model within the rules that classifies at least 40 % of the test images."""
    accuracy = entry.ranked_accuracy()
    assert accuracy >= FLOOR_ACCURACY, (
        f"Your model classifies {accuracy:.1%} of the test images (divided by 255) correctly; the "
        f"pass mark is {FLOOR_ACCURACY:.0%}. " + shortfall(entry, accuracy)
    )


@pytest.mark.points(BAND_POINTS)
def test_accuracy_bands(entry):
    """One point for each band reached: 55 %, 60 %, 65 % and 70 % test accuracy."""
    accuracy = entry.ranked_accuracy()
    reached = [band for band in BANDS if accuracy >= band]
    if len(reached) == len(BANDS):
        return
    bands = ", ".join(f"{band:.0%}" for band in BANDS)
    next_band = BANDS[len(reached)]
    message = (
        f"Your model classifies {accuracy:.1%} of the test images correctly: {len(reached)} of the "
        f"{len(BANDS)} bands ({bands}) reached, so {len(reached)} of {BAND_POINTS} points; the next "
        f"band starts at {next_band:.0%}. " + shortfall(entry, accuracy)
    )
    if not reached:
        raise AssertionError(message)
    partial_credit(len(reached) / len(BANDS), message)
