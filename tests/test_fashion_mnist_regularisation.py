"""fashion_mnist_regularisation graded end to end: wrong answers, through the
real engine and a real kernel. The reference and the blank release are graded
in tests/test_every_assignment.py, as for every assignment (shared here
through the session fixtures).

Three submissions are graded, each wrong in several ways at once so that one
grading shows several messages, and each training for a few epochs at most
(67 s for the three on the 2 development cores while other work ran).
The scores asserted here do not depend on the seed or on the private slice
the course's seed holds back (docs/thresholds.md): structural faults are
exact, a history validated on the test set matches it to float precision,
one epoch of SGD lands near 62% test accuracy (the target is 82%), and a
plain network trained one or two epochs has a gap near 0.06 (at least 0.15
is asked). One outcome was measured on a single grading only: the raw-pixel
submission passes the gap check with a ratio of 0.41 (at most 0.70)."""

import pytest

from autograder.results import Status
from conftest import assert_only_these_fail, failing, needs_data_of

A = "fashion_mnist_regularisation"
pytestmark = [pytest.mark.slow, needs_data_of(A)]

SCALED = """
x_train_scaled = x_train.astype("float32") / 255
x_test_scaled = x_test.astype("float32") / 255
x_part, y_part = x_train_scaled[:N_USED], y_train[:N_USED]
"""
UNSCALED = """
x_train_scaled = x_train.astype("float32")
x_test_scaled = x_test.astype("float32")
x_part, y_part = x_train_scaled[:N_USED], y_train[:N_USED]
"""


def network(name, *, l2=None, dropout=None, seed=0):
    """Source of the lecture's network as ``name``, with an L2 factor on each
    Dense kernel and a Dropout rate after each hidden layer when given."""
    penalty = f", kernel_regularizer=keras.regularizers.L2({l2})" if l2 else ""
    drop = f"\n    keras.layers.Dropout({dropout})," if dropout else ""
    return (
        f"keras.utils.set_random_seed({seed})\n"
        f"{name} = keras.Sequential([\n"
        "    keras.Input(shape=(28, 28)),\n"
        "    keras.layers.Flatten(),\n"
        f"    keras.layers.Dense(512, activation='relu'{penalty}),{drop}\n"
        f"    keras.layers.Dense(512, activation='relu'{penalty}),{drop}\n"
        f"    keras.layers.Dense(10, activation='softmax'{penalty}),\n"
        "])"
    )


def training(name, *, epochs, validation="validation_split=0.2", stop=None):
    """Source that compiles ``name``_model as the notebook asks and keeps its
    history in ``name``_history; ``stop`` is an EarlyStopping's arguments."""
    callbacks = f", callbacks=[keras.callbacks.EarlyStopping({stop})]" if stop else ""
    return (
        f"{name}_model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),\n"
        "    loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        f"{name}_history = {name}_model.fit(x_part, y_part, {validation}, epochs={epochs}, "
        f"batch_size=128, verbose=0{callbacks})"
    )


TEST_AS_VALIDATION = "validation_data=(x_test_scaled, y_test)"


@pytest.fixture(scope="module")
def lecture_code(graded):
    """The lecture's habit of validating on the test set
    (validation_data=(x_test, y_test)), for both models, with the asked
    networks but trained briefly: the plain one 2 epochs, the regularised
    one a single epoch of plain SGD."""
    return graded(A, "lecture_code", {
        "prepare": SCALED,
        "build_plain": network("plain_model"),
        "train_plain": training("plain", epochs=2, validation=TEST_AS_VALIDATION),
        "build_regularised": network("regularised_model", l2="1e-4", dropout=0.3),
        "train_regularised": training("regularised", epochs=1, validation=TEST_AS_VALIDATION).replace(
            "keras.optimizers.Adam(learning_rate=0.001)", "keras.optimizers.SGD(learning_rate=0.01)"),
    })


@pytest.fixture(scope="module")
def briefly_trained(graded):
    """plain_model with Dropout layers, trained one epoch (too few to
    overfit); regularised_model with Dropout but no L2 penalty, trained one
    epoch of plain SGD (far from the accuracy target, and no early stopping)."""
    return graded(A, "briefly_trained", {
        "prepare": SCALED,
        "build_plain": network("plain_model", dropout=0.2),
        "train_plain": training("plain", epochs=1),
        "build_regularised": network("regularised_model", dropout=0.3),
        "train_regularised": training("regularised", epochs=1).replace(
            "keras.optimizers.Adam(learning_rate=0.001)", "keras.optimizers.SGD(learning_rate=0.01)"),
    })


@pytest.fixture(scope="module")
def raw_pixels_without_restoring(graded):
    """Unscaled pixels (0-255); plain_model trained 2 epochs; regularised_model
    as asked but stopped early (patience 1) without restore_best_weights, so
    it keeps the weights of the epoch after its best. Right about 10% of the
    time on x / 255, about 68% on raw pixels."""
    return graded(A, "raw_pixels_without_restoring", {
        "prepare": UNSCALED,
        "build_plain": network("plain_model"),
        "train_plain": training("plain", epochs=2),
        "build_regularised": network("regularised_model", l2="1e-4", dropout=0.3),
        "train_regularised": training("regularised", epochs=50, stop="monitor='val_loss', patience=1"),
    })


def test_validated_on_the_test_set_as_the_lecture_does(lecture_code):
    checks = assert_only_these_fail(lecture_code, A, {
        "test_validation_is_not_the_test_set": [
            "`plain_history` and `regularised_history` were validated on the test set",
            "validation_data=(x_test, y_test)", "validation_split=0.2",
            "the test accuracy is no longer an honest measure"],
        "test_early_stopping_restored_the_best_weights": ["early stopping never had to act"],
        "test_test_accuracy": ["the target is 82%"],
        "test_regularisation_narrows_the_gap": ["`plain_model` barely overfits"],
    })
    assert lecture_code.score == 3  # both networks are built as asked
    assert all(checks[name].status is Status.FAIL and checks[name].score == 0
               for name in failing(lecture_code))


def test_briefly_trained_networks_without_the_asked_regularisation(briefly_trained):
    checks = assert_only_these_fail(briefly_trained, A, {
        "test_plain_model_is_the_decks_network": ["without regularisation", "2 Dropout layer(s)"],
        "test_regularised_model_has_l2_and_dropout": [
            "have no L2 penalty", "kernel_regularizer=keras.regularizers.L2(1e-4)"],
        "test_early_stopping_restored_the_best_weights": [
            "still at its lowest in the last epoch, epoch 1", "early stopping never had to act"],
        "test_test_accuracy": ["the target is 82%", "too strong for the model to learn"],
        "test_regularisation_narrows_the_gap": ["`plain_model` barely overfits", "20 epochs"],
    })
    assert briefly_trained.score == 2  # the histories were validated on the training images
    assert all(checks[name].score == 0 for name in checks if name != "test_validation_is_not_the_test_set")


def test_raw_pixels_and_no_restored_weights(raw_pixels_without_restoring):
    checks = assert_only_these_fail(raw_pixels_without_restoring, A, {
        "test_early_stopping_restored_the_best_weights": [
            "restore_best_weights=True", "but the validation loss was lowest at epoch"],
        "test_test_accuracy": ["With the pixels as raw pixels (0 to 255) it does much better",
                               "feeds x / 255"],
    })
    assert raw_pixels_without_restoring.score == 7
    # Judged in the scale they were trained on, both histories are the models' own, validated
    # as asked, and the regularised gap is clearly the smaller (0.22 against 0.53 when measured).
    assert checks["test_validation_is_not_the_test_set"].status is Status.PASS
    assert checks["test_regularisation_narrows_the_gap"].status is Status.PASS
