"""mnist_cnn graded end to end: wrong-but-plausible answers, through the
real engine and a real kernel. The reference and the blank release are graded
in tests/test_every_assignment.py, as for every assignment.

The wrong answers train for one epoch on a small subset (or one step): each
misses the accuracy target by a wide margin, so their scores do not depend on
the seed or on the machine."""

import pytest

from conftest import assert_only_these_fail, needs_data_of

A = "mnist_cnn"
pytestmark = [pytest.mark.slow, needs_data_of(A)]

PREPARE = """
x_train = x_train_raw.reshape(-1, 28, 28, 1).astype("float32"){scale}
x_test = x_test_raw.reshape(-1, 28, 28, 1).astype("float32"){scale}
y_train_onehot = keras.utils.to_categorical(y_train, 10)
y_test_onehot = keras.utils.to_categorical(y_test, 10)
"""
SCALED = PREPARE.format(scale=" / 255")
UNSCALED = PREPARE.format(scale="")

BLOCK = """
    layers.Conv2D({filters}, 3, use_bias=False),
    layers.MaxPooling2D(),
    layers.BatchNormalization(),
    layers.Activation("relu"),"""
CNN = """
keras.utils.set_random_seed(1)
model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),{blocks}
    layers.Flatten(),
    layers.Dropout(0.3),
    layers.Dense({dense}, activation="relu"),
    layers.Dense(10, activation="{output}"),
])
"""
WORKSHOP_CNN = """
keras.utils.set_random_seed(1)
model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    layers.Conv2D(32, 3, activation="relu"),
    layers.Conv2D(32, 3, activation="relu"),
    layers.MaxPooling2D(2),
    layers.Conv2D(64, 3, activation="relu"),
    layers.Conv2D(64, 3, activation="relu"),
    layers.MaxPooling2D(2),
    layers.Flatten(),
    layers.Dense(1024, activation="sigmoid"),
    layers.Dropout(0.2),
    layers.Dense(1024, activation="sigmoid"),
    layers.Dropout(0.2),
    layers.Dense(10, activation="softmax"),
])
"""
TRAIN = """
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
              loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train[:{n}], y_train_onehot[:{n}], batch_size=128, epochs=1, verbose=0)
"""


def cnn(filters=(32, 64), dense=64, output="softmax"):
    blocks = "".join(BLOCK.format(filters=f) for f in filters)
    return CNN.format(blocks=blocks, dense=dense, output=output)


WRONG = {
    # One convolution only: the network cannot build larger shapes from small pieces.
    "one_conv": {"prepare": SCALED, "build_model": cnn(filters=(32,), dense=32),
                 "train": TRAIN.format(n=2000)},
    # The 2018 workshop network, over budget; trained for a single step.
    "workshop": {"prepare": SCALED, "build_model": WORKSHOP_CNN, "train": TRAIN.format(n=128)},
    # Pixels left at 0..255.
    "unscaled": {"prepare": UNSCALED, "build_model": cnn(), "train": TRAIN.format(n=2000)},
    # No channel axis in the exported arrays (Keras adds it silently when fitting).
    "no_channel": {"prepare": SCALED.replace(".reshape(-1, 28, 28, 1)", ""), "build_model": cnn(),
                   "train": TRAIN.format(n=2000)},
    # Ten independent sigmoids instead of a softmax distribution.
    "sigmoid": {"prepare": SCALED, "build_model": cnn(output="sigmoid"), "train": TRAIN.format(n=2000)},
}



@pytest.fixture(scope="module")
def wrong(graded):
    return lambda name: graded(A, name, WRONG[name])


FAILS = {
    "one_conv": {"test_convolutional_layers": ["1 Conv2D layer"], "test_test_accuracy": []},
    "workshop": {"test_parameter_budget": ["2,174,442 parameters", "budget is 250,000"],
                 "test_test_accuracy": []},
    "unscaled": {"test_images_prepared": ["go up to 255"], "test_test_accuracy": ["scaled to [0, 1]"]},
    "no_channel": {"test_images_prepared": ["need a channel axis"], "test_test_accuracy": []},
    "sigmoid": {"test_output_is_probabilities": ["uses `sigmoid`"], "test_test_accuracy": []},
}
"""For each wrong answer, the checks that fail and what each of them says;
every other check earns its full points."""


@pytest.mark.parametrize("answer", FAILS)
def test_wrong_answer(wrong, answer):
    assert_only_these_fail(wrong(answer), A, FAILS[answer])
