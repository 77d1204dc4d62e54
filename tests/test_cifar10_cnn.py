"""cifar10_cnn graded end to end: wrong-but-plausible answers, through the
real engine and a real kernel. The reference and the blank release are graded
in tests/test_every_assignment.py, as for every assignment.

The reference trains on all 45,000 training images (about three minutes on
two CPU cores). The wrong answers train for one epoch on 2,000 images: each
misses the accuracy target by a wide margin, so their scores do not depend on
the seed or on the machine."""

import pytest

from conftest import CIFAR10_CONV_MODEL, CIFAR10_DENSE_MODEL, assert_only_these_fail, needs_data_of

A = "cifar10_cnn"
pytestmark = [pytest.mark.slow, needs_data_of(A)]

RANDOM_SPLIT = """
indices = np.random.default_rng(0).permutation(len(x_train_full))
val_indices, train_indices = indices[:5000], indices[5000:]
x_train = x_train_full[train_indices].astype("float32") / 255
y_train = y_train_full[train_indices]
x_val = x_train_full[val_indices].astype("float32") / 255
y_val = y_train_full[val_indices]
x_test = x_test_raw.astype("float32") / 255
"""
# The workshop's slicing: 5,000 images to train on, 45,000 to validate on.
BACKWARDS_SPLIT = """
num_valid = 5000
x_val, y_val = x_train_full[num_valid:].astype("float32") / 255, y_train_full[num_valid:]
x_train, y_train = x_train_full[:num_valid].astype("float32") / 255, y_train_full[:num_valid]
x_test = x_test_raw.astype("float32") / 255
"""
# Validation taken from the end of the training part instead of beside it.
OVERLAPPING_SPLIT = """
x_train = x_train_full[:-5000].astype("float32") / 255
y_train = y_train_full[:-5000]
x_val, y_val = x_train[-5000:], y_train[-5000:]
x_test = x_test_raw.astype("float32") / 255
"""

CNN = CIFAR10_CONV_MODEL.replace(
    "{head}", 'layers.Flatten(), layers.Dropout(0.3), layers.Dense({units}, activation="softmax")')
TRAIN = """
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train[:2000], y_train[:2000], batch_size=128, epochs=1, verbose=0)
"""

WRONG = {
    "backwards": {"split": BACKWARDS_SPLIT, "build_model": CNN.format(units=10), "train": TRAIN},
    "overlap": {"split": OVERLAPPING_SPLIT, "build_model": CNN.format(units=10), "train": TRAIN},
    "dense_only": {"split": RANDOM_SPLIT, "build_model": CIFAR10_DENSE_MODEL, "train": TRAIN},
    # y_train has shape (N, 1): its second axis is not the number of classes.
    # Training then fails (labels up to 9 for one output); the model is still graded.
    "one_output": {"split": RANDOM_SPLIT, "build_model": CNN.format(units="y_train.shape[1]"),
                   "train": TRAIN},
}



@pytest.fixture(scope="module")
def wrong(graded):
    return lambda name: graded(A, name, WRONG[name])


FAILS = {
    "backwards": {"test_split_sizes": ["the split is backwards"], "test_test_accuracy": []},
    "overlap": {"test_split_has_no_overlap": ["5,000 images are in both `x_train` and `x_val`"],
                "test_test_accuracy": []},
    "dense_only": {"test_parameter_budget": ["the budget is 500,000"],
                   "test_test_accuracy": ["use convolutions"]},
    "one_output": {"test_output_layer": ["y_train.shape[1] is 1"], "test_test_accuracy": []},
}
"""For each wrong answer, the checks that fail and what each of them says;
every other check earns its full points."""


@pytest.mark.parametrize("answer", FAILS)
def test_wrong_answer(wrong, answer):
    assert_only_these_fail(wrong(answer), A, FAILS[answer])


def test_one_output_unit_is_graded_although_training_fails(wrong):
    result = wrong("one_output")
    assert any("cell 'train' raised" in note for note in result.notes), result.notes
