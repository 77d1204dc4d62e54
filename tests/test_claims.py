"""What a kernel reports is checked against the model it exported.

mnist_mlp's `test_training_loss_decreases` used to trust `history`: a history
written by hand, with no training behind it, earned the point. The suite now
recomputes the cross-entropy of the exported model on a fixed sample of the
training images and requires the last loss in `history` to agree with it
within HISTORY_LOSS_BAND (checks.check_reported_loss; the band is measured by
benchmarks/history_tolerance.py, docs/thresholds.md).

The first tests state the rule on small numbers; the slow ones grade forged
submissions end to end, and the reference, which must keep its point.
"""

import math
import re

import numpy as np
import pytest

from autograder.checks import (
    check_reported_loss,
    loss_ratio,
    mean_crossentropy,
    reported_loss_agrees,
)
from autograder.results import Status
from conftest import MNIST_MLP_MODEL, MNIST_PREPARE, by_name

BAND = (0.5, 4.0)

# ---------------------------------------------------------------- the rule


def test_crossentropy_is_minus_the_log_of_the_true_class_probability():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    expected = -(math.log(0.7) + math.log(0.8)) / 2
    assert mean_crossentropy(probabilities, [0, 1]) == pytest.approx(expected)
    assert mean_crossentropy(probabilities, np.array([[0], [1]])) == pytest.approx(expected)
    assert mean_crossentropy(probabilities, np.eye(3)[[0, 1]]) == pytest.approx(expected)


def test_crossentropy_normalises_rows_and_reads_logits_as_keras_does():
    # Sigmoid-like rows that do not add up to 1 are divided by their sum.
    assert mean_crossentropy(np.array([[0.5, 0.5, 1.0]]), [2]) == pytest.approx(math.log(2))
    # Scores outside [0, 1] are logits: softmax first.
    logits = np.array([[2.0, -1.0, 0.0]])
    softmax = np.exp(logits) / np.exp(logits).sum()
    assert mean_crossentropy(logits, [0]) == pytest.approx(-math.log(softmax[0, 0]))
    # A probability of 0 for the true class is clipped, not infinite.
    assert mean_crossentropy(np.array([[1.0, 0.0]]), [1]) == pytest.approx(-math.log(1e-7), rel=1e-3)


def test_ratio_of_reported_to_recomputed_loss():
    assert loss_ratio(0.03, 0.02) == pytest.approx(1.5)
    assert loss_ratio(0.0, 0.0) == 1.0
    assert loss_ratio(0.1, 0.0) == math.inf


def test_losses_agree_inside_the_band_bounds_included_and_never_with_nan():
    assert reported_loss_agrees(0.034, 0.019, within=BAND)
    assert reported_loss_agrees(0.5, 1.0, within=BAND)
    assert reported_loss_agrees(4.0, 1.0, within=BAND)
    assert not reported_loss_agrees(0.49, 1.0, within=BAND)
    assert not reported_loss_agrees(4.01, 1.0, within=BAND)
    assert not reported_loss_agrees(float("nan"), 1.0, within=BAND)
    assert not reported_loss_agrees(1.0, float("nan"), within=BAND)


def test_a_band_that_excludes_agreement_is_refused():
    with pytest.raises(ValueError, match="must contain 1"):
        reported_loss_agrees(1.0, 1.0, within=(1.5, 4.0))


def test_an_agreeing_loss_passes_and_returns_the_ratio():
    assert check_reported_loss(0.034, 0.02, within=BAND) == pytest.approx(1.7)


def test_a_claimed_loss_far_below_the_models_says_so_with_both_numbers():
    with pytest.raises(AssertionError) as failure:
        check_reported_loss(0.01, 2.3, within=BAND, data="the sample", hint="Train it.")
    message = str(failure.value)
    assert message.startswith("The loss in `history` (0.01) is not what your model gets on the sample (2.3): ")
    assert "`history` claims a loss 230.0 times lower than your model reaches" in message
    assert "Keep what model.fit returns (`history = model.fit(...)`)" in message
    assert message.endswith(" Train it.")


def test_a_claimed_loss_far_above_the_models_and_a_zero_loss_are_explained():
    with pytest.raises(AssertionError, match=r"reports a loss 25\.0 times higher than your model gets"):
        check_reported_loss(0.5, 0.02, within=BAND)
    with pytest.raises(AssertionError, match="`trial` claims a loss lower than your model reaches"):
        check_reported_loss(0.0, 0.3, within=BAND, name="trial")
    with pytest.raises(AssertionError, match="outputs NaN or infinity"):
        check_reported_loss(0.3, float("nan"), within=BAND)


# ---------------------------------------------------------------- mnist_mlp, graded

A = "mnist_mlp"
LOSS_CHECK = "test_training_loss_decreases"
COMPILE = """
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
"""
# Shapes (1), probabilities (2) and budget (1) pass; the loss check and the
# accuracy (the model is untrained or trained on 2,000 images) earn nothing.
FORGED_SCORE = 4
LOSS_MESSAGE = re.compile(
    r"The loss in `history` \((?P<reported>[0-9.e-]+)\) is not what your model gets on 10,000 "
    r"of the training images \(`x_fit`\), scaled to \[0, 1\] \((?P<recomputed>[0-9.e-]+)\): "
    r"`history` claims a loss [0-9.]+ times lower than your model reaches"
)


def loss_failure(result):
    check = by_name(result)[LOSS_CHECK]
    assert (check.status, check.score, check.max_score) == (Status.FAIL, 0, 1), check
    found = LOSS_MESSAGE.match(check.output)
    assert found, check.output
    assert "Keep what model.fit returns" in check.output
    return float(found["reported"]), float(found["recomputed"])


@pytest.mark.slow
def test_a_history_written_by_hand_for_an_untrained_model_earns_nothing(graded):
    result = graded(A, "forged_history_dict", {
        "prepare": MNIST_PREPARE,
        "build": MNIST_MLP_MODEL,
        "train": COMPILE + 'history = {"loss": [2.0, 1.0, 0.5]}  # no training at all\n',
    })
    assert result.score == FORGED_SCORE
    reported, recomputed = loss_failure(result)
    assert reported == 0.5
    assert 2.0 < recomputed < 2.6  # about ln(10): an untrained model guesses


@pytest.mark.slow
def test_a_fake_history_object_beside_a_briefly_trained_model_earns_nothing(graded):
    result = graded(A, "forged_history_object", {
        "prepare": MNIST_PREPARE,
        "build": MNIST_MLP_MODEL,
        "train": COMPILE + (
            "model.fit(x_fit[:2000], y_fit[:2000], epochs=1, batch_size=128, verbose=0)\n"
            "history = keras.callbacks.History()\n"
            "history.history = {'loss': [0.9, 0.3, 0.05], 'accuracy': [0.8, 0.95, 0.99]}\n"
        ),
    })
    assert result.score == FORGED_SCORE
    reported, recomputed = loss_failure(result)
    assert reported == 0.05 and recomputed > 0.3


@pytest.mark.slow
def test_the_reference_history_belongs_to_its_model(reference_cli):
    results, _ = reference_cli(A)
    check = {t["name"]: t for t in results["tests"]}[LOSS_CHECK]
    assert (check["status"], check["score"]) == ("pass", 1)
