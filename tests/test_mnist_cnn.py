"""mnist_cnn graded end to end: wrong-but-plausible answers, through the
real engine and a real kernel. The reference and the blank release are graded
in tests/test_every_assignment.py, as for every assignment.

The wrong answers train for one epoch on a small subset (or one step): each
misses the accuracy target by a wide margin, so their scores do not depend on
the seed or on the machine."""

import pytest

from conftest import by_name, earned, failing, needs_data_of

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


def test_single_conv_layer(wrong):
    result = wrong("one_conv")
    assert failing(result) == {"test_convolutional_layers", "test_test_accuracy"}
    assert result.score == earned(A, "test_images_prepared", "test_output_is_probabilities",
                                  "test_parameter_budget")
    assert "1 Conv2D layer" in by_name(result)["test_convolutional_layers"].output


def test_workshop_network_is_over_budget(wrong):
    result = wrong("workshop")
    assert failing(result) == {"test_parameter_budget", "test_test_accuracy"}
    assert result.score == earned(A, "test_images_prepared", "test_convolutional_layers",
                                  "test_output_is_probabilities")
    message = by_name(result)["test_parameter_budget"].output
    assert "2,174,442 parameters" in message and "budget is 250,000" in message


def test_unscaled_pixels(wrong):
    result = wrong("unscaled")
    assert failing(result) == {"test_images_prepared", "test_test_accuracy"}
    assert result.score == earned(A, "test_convolutional_layers", "test_output_is_probabilities",
                                  "test_parameter_budget")
    assert "go up to 255" in by_name(result)["test_images_prepared"].output
    assert "scaled to [0, 1]" in by_name(result)["test_test_accuracy"].output


def test_missing_channel_axis(wrong):
    result = wrong("no_channel")
    assert failing(result) == {"test_images_prepared", "test_test_accuracy"}
    assert result.score == earned(A, "test_convolutional_layers", "test_output_is_probabilities",
                                  "test_parameter_budget")
    assert "need a channel axis" in by_name(result)["test_images_prepared"].output


def test_sigmoid_output(wrong):
    result = wrong("sigmoid")
    assert failing(result) == {"test_output_is_probabilities", "test_test_accuracy"}
    assert result.score == earned(A, "test_images_prepared", "test_convolutional_layers",
                                  "test_parameter_budget")
    assert "uses `sigmoid`" in by_name(result)["test_output_is_probabilities"].output
