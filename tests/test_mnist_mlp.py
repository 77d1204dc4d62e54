"""mnist_mlp graded end to end: wrong-but-plausible answers, through the
real engine and a real kernel. The reference and the blank release are graded
in tests/test_every_assignment.py, as for every assignment.

The wrong answers train on small subsets or for few epochs: each fails the
accuracy target by a wide margin, so their scores do not depend on the seed."""


import pytest

from autograder.results import Status
from conftest import MNIST_PREPARE, by_name, earned, failing, needs_data_of, planned_points

A = "mnist_mlp"
pytestmark = [pytest.mark.slow, needs_data_of(A)]

MODEL = """
keras.utils.set_random_seed(1)
model = keras.Sequential([
    keras.Input(shape=({input},)),
    {flatten}
    {hidden}
    keras.layers.Dense(10, activation="{output}"),
])
"""
TRAIN = """
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="{loss}", metrics=["accuracy"])
history = model.fit(x_fit[:{n}], {labels}[:{n}], epochs={epochs}, batch_size=128, verbose=0)
"""


def build(*, input="28, 28", hidden=(128,), output="softmax"):
    return MODEL.format(
        input=input,
        flatten="keras.layers.Flatten()," if input == "28, 28" else "",
        hidden="\n    ".join(f'keras.layers.Dense({u}, activation="relu"),' for u in hidden),
        output=output,
    )



def test_blank_release_says_which_variables_are_missing(blank_release):
    checks = by_name(blank_release(A))
    assert "does not define `model`" in checks["test_test_accuracy"].output
    assert "does not define `history`" in checks["test_training_loss_decreases"].output


def test_unscaled_training_images_fail_accuracy_with_a_hint_to_scale(graded):
    """Trained on raw 0-255 pixels, flattened to (N, 784): right about 92% of
    the time on raw test pixels, about 40% on the scaled ones the grader uses."""
    result = graded(A, "unscaled", {
        "prepare": MNIST_PREPARE.replace(' / 255', '').replace('astype("float32")', 'reshape(-1, 784).astype("float32")'),
        "build": build(input="784", hidden=(128,)),
        "train": TRAIN.format(loss="sparse_categorical_crossentropy", labels="y_fit", n=55000, epochs=3),
    })
    assert failing(result) == {"test_test_accuracy"}
    assert result.score == earned(A, *set(planned_points(A)) - failing(result)) == 5
    message = by_name(result)["test_test_accuracy"].output
    assert by_name(result)["test_test_accuracy"].score == 0
    assert "trained on unscaled images" in message and "Divide the training images by 255" in message


def test_sigmoid_output_is_not_a_probability_distribution(graded):
    """One-hot labels with categorical_crossentropy, as the notebook allows,
    but a sigmoid output layer. 2,000 images for 2 epochs."""
    result = graded(A, "sigmoid", {
        "prepare": MNIST_PREPARE,
        "build": build(hidden=(64,), output="sigmoid"),
        "train": TRAIN.format(loss="categorical_crossentropy",
                              labels="keras.utils.to_categorical(y_fit, 10)", n=2000, epochs=2),
        "evaluate": "test_loss, test_accuracy = model.evaluate(x_test_scaled, keras.utils.to_categorical(y_test, 10), verbose=0)",
    })
    assert failing(result) == {"test_outputs_are_probabilities", "test_test_accuracy"}
    assert result.score == earned(
        A,
        "test_input_and_output_shapes", "test_parameter_budget", "test_training_loss_decreases"
    ) == 3
    message = by_name(result)["test_outputs_are_probabilities"].output
    assert "uses `sigmoid` over 10 classes" in message and "Use `softmax`" in message
    assert by_name(result)["test_test_accuracy"].score == 0


def test_one_hot_labels_with_the_sparse_loss_stop_training(graded):
    """fit raises a ValueError, so `history` is never defined and the model
    stays untrained: the accuracy message points at labels and loss."""
    result = graded(A, "onehot_sparse", {
        "prepare": MNIST_PREPARE,
        "build": build(),
        "train": TRAIN.format(loss="sparse_categorical_crossentropy",
                              labels="keras.utils.to_categorical(y_fit, 10)", n=1000, epochs=2),
    })
    checks = by_name(result)
    assert checks["test_training_loss_decreases"].status is Status.NOT_ATTEMPTED
    assert checks["test_test_accuracy"].status is Status.FAIL
    assert failing(result) == {"test_training_loss_decreases", "test_test_accuracy"}
    assert result.score == earned(
        A,
        "test_input_and_output_shapes", "test_outputs_are_probabilities", "test_parameter_budget"
    ) == 4
    assert "close to guessing" in checks["test_test_accuracy"].output
    assert "integer labels of shape (N,)" in checks["test_test_accuracy"].output
    assert any("'train' raised ValueError" in note for note in result.notes)


def test_far_too_many_parameters_fail_the_budget(graded):
    result = graded(A, "too_big", {
        "prepare": MNIST_PREPARE,
        "build": build(hidden=(1024, 1024)),
        "train": TRAIN.format(loss="sparse_categorical_crossentropy", labels="y_fit", n=1000, epochs=2),
    })
    assert failing(result) == {"test_parameter_budget", "test_test_accuracy"}
    assert result.score == earned(
        A,
        "test_input_and_output_shapes", "test_outputs_are_probabilities", "test_training_loss_decreases"
    ) == 4
    assert "1,863,690 parameters; the budget is 300,000" in by_name(result)["test_parameter_budget"].output
    assert by_name(result)["test_test_accuracy"].score == 0
