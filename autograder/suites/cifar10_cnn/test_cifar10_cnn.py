"""Hidden checks for cifar10_cnn: a train/validation split and a CNN for CIFAR-10.

The suite loads CIFAR-10 itself. It recognises every exported training and
validation image by a hash of its pixels (after undoing the division by 255),
so a split is judged by the images it really holds, not by what the notebook
printed about them. Accuracy is recomputed on the test set divided by 255,
and at grading time compared with the accuracy on a private slice of training
images the kernel was never served (checks.check_test_set_unseen): a model
clearly better on the test set has seen it, and gets no accuracy points. The
split sizes follow what the kernel was served: 50,000 training images, or
fewer when the grader holds a slice back.
Thresholds come from running the reference solution over several seeds (see
the assignment's test file).
"""

import hashlib

import numpy as np
import pytest

from autograder.checks import (
    check_input_shape,
    check_parameter_budget,
    check_softmax_over,
    check_test_set_unseen,
    grade_by_threshold,
    largest_layer,
    model_fixture,
    predict,
)
from autograder.datasets import cifar10, served

VAL_SIZE = 5_000
SERVED_SIZE = served.served_train_rows("cifar10", served.holdout_seed_from_env())
TRAIN_SIZE = SERVED_SIZE - VAL_SIZE
PARAMETER_BUDGET = 500_000
TARGET_ACCURACY = 0.70
PARTIAL_ACCURACY = 0.60
SAMPLE = 256
CHUNK = 5_000
# Labels 0-9 in the words the notebook uses.
CLASS_NAMES = ["aeroplane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "lorry"]


def _keys(pixels):
    """One short digest per image of a uint8 array (N, 32, 32, 3)."""
    flat = np.ascontiguousarray(pixels).reshape(len(pixels), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


@pytest.fixture(scope="module")
def cifar():
    (x_full, y_full), (x_test, y_test) = cifar10.load_data()
    return {
        "train_index": {key: i for i, key in enumerate(_keys(x_full))},
        "test_keys": set(_keys(x_test)),
        "y_full": y_full.ravel(),
        "x_test": x_test,
        "y_test": y_test.ravel(),
    }


model = model_fixture("model")


@pytest.fixture(scope="module")
def scaled_test_images(cifar):
    return cifar["x_test"].astype("float32") / 255


def _images(artifacts, name):
    images = artifacts.array(name)
    assert images.ndim == 4 and images.shape[1:] == (32, 32, 3), (
        f"`{name}` has shape {images.shape}; it should hold whole images, shape (N, 32, 32, 3). "
        "Split x_train_full along its first axis only, and do not flatten the images."
    )
    return images


def _labels(artifacts, name, count):
    labels = artifacts.array(name)
    if labels.ndim == 2 and labels.shape[1] == 10:  # one-hot labels
        labels = np.argmax(labels, axis=1)
    labels = labels.reshape(len(labels), -1)
    assert labels.shape == (count, 1), (
        f"`{name}` has shape {artifacts.array(name).shape}; it should hold one label per image of "
        f"`x{name[1:]}`, that is {count} labels."
    )
    return labels.ravel()


def _pixels(name, images):
    """The original uint8 pixels of exported images (scaled by 1/255 or not)."""
    if images.dtype == np.uint8:
        return images
    assert np.issubdtype(images.dtype, np.number), f"`{name}` should hold numbers, not {images.dtype}."
    top = float(np.max(images)) if images.size else 0.0
    factor = 255.0 if top <= 1.0 + 1e-6 else 1.0
    pixels = np.empty(images.shape, dtype=np.uint8)
    for start in range(0, len(images), CHUNK):
        values = images[start:start + CHUNK].astype("float64") * factor
        rounded = np.rint(values)
        assert np.max(np.abs(values - rounded), initial=0) < 0.25 and np.min(rounded, initial=0) >= 0 \
            and np.max(rounded, initial=0) <= 255, (
            f"The values in `{name}` are not the original pixels divided by 255, so the grader cannot "
            "recognise the images. Scale with .astype('float32') / 255 only (no other normalisation "
            "and no augmentation in these arrays)."
        )
        pixels[start:start + CHUNK] = rounded
    return pixels


@pytest.mark.points(1)
def test_split_sizes(artifacts):
    """x_val holds 5,000 of the training images and x_train all the others, with one label each."""
    n_train = len(_images(artifacts, "x_train"))
    n_val = len(_images(artifacts, "x_val"))
    if (n_train, n_val) == (VAL_SIZE, TRAIN_SIZE):
        raise AssertionError(
            f"`x_train` holds {n_train:,} images and `x_val` {n_val:,}: the split is backwards, like "
            "the workshop code. x_train_full[5000:] is everything after the first 5,000 images, so the "
            f"network would learn from only {VAL_SIZE:,} images and be checked on {TRAIN_SIZE:,}. Train on "
            f"{TRAIN_SIZE:,} images and keep {VAL_SIZE:,} for validation."
        )
    assert n_train == TRAIN_SIZE, (
        f"`x_train` holds {n_train:,} images; it should hold {TRAIN_SIZE:,}: the {SERVED_SIZE:,} "
        f"training images the notebook loaded minus the {VAL_SIZE:,} kept for validation."
    )
    assert n_val == VAL_SIZE, (
        f"`x_val` holds {n_val:,} images; it should hold {VAL_SIZE:,} images taken from the "
        "training set."
    )
    _labels(artifacts, "y_train", n_train)
    _labels(artifacts, "y_val", n_val)


@pytest.mark.points(2)
def test_split_has_no_overlap(artifacts, cifar):
    """Training and validation images are distinct training-set images with their own labels."""
    index = cifar["train_index"]
    positions = {}
    for name in ("x_train", "x_val"):
        keys = _keys(_pixels(name, _images(artifacts, name)))
        found = [index.get(key) for key in keys]
        missing = [key for key, i in zip(keys, found) if i is None]
        if missing:
            from_test = sum(key in cifar["test_keys"] for key in missing)
            assert not from_test, (
                f"{from_test:,} images in `{name}` come from the test set. Take the validation images "
                "from x_train_full; the test set stays untouched until the final measurement."
            )
            raise AssertionError(
                f"{len(missing):,} images in `{name}` are not CIFAR-10 training images. Fill `{name}` "
                "with images of x_train_full, divided by 255 and otherwise unchanged."
            )
        found = np.asarray(found)
        repeated = len(found) - len(np.unique(found))
        assert repeated == 0, (
            f"`{name}` holds {repeated:,} images more than once. Select its images with a "
            "permutation of the indices (each index once), not with random draws."
        )
        positions[name] = found
    shared = np.intersect1d(positions["x_train"], positions["x_val"])
    assert shared.size == 0, (
        f"{shared.size:,} images are in both `x_train` and `x_val`. The validation images must be "
        "ones the network never trains on, otherwise validation accuracy only measures how well it "
        "remembers. Split one permutation of the indices into two parts that do not share any."
    )
    for x_name, y_name in (("x_train", "y_train"), ("x_val", "y_val")):
        labels = _labels(artifacts, y_name, len(positions[x_name]))
        wrong = float(np.mean(labels != cifar["y_full"][positions[x_name]]))
        assert wrong == 0, (
            f"{wrong:.1%} of the labels in `{y_name}` do not belong to the images in `{x_name}`. Index "
            "the images and the labels with the same indices, so every image keeps its label."
        )


@pytest.mark.points(1)
def test_output_layer(model, scaled_test_images):
    """The model maps (32, 32, 3) images to 10 class probabilities."""
    check_input_shape(model, (32, 32, 3), message=(
        "Your model was built for inputs of shape {shape}; CIFAR-10 images have the shape "
        "(32, 32, 3): use keras.Input(shape=(32, 32, 3))."
    ))
    check_softmax_over(
        model, scaled_test_images[:SAMPLE], 10, what=f"{SAMPLE} test images",
        wrong_shape=lambda shape: (
            f"For {SAMPLE} images your model returns shape {shape}; it should return ({SAMPLE}, 10), "
            "one probability per class. CIFAR-10 has 10 classes: end with Dense(10, activation='softmax'). "
            "(The labels have shape (N, 1), so y_train.shape[1] is 1, not the number of classes.)"
        ),
        not_probabilities=lambda activation, sums: (
            f"Your model's 10 outputs add up to between {sums.min():.2f} and {sums.max():.2f} instead of 1"
            + (f" (the last layer uses `{activation}`)" if activation else "")
            + ". Use activation='softmax' in the last Dense layer so the outputs are class probabilities."
        ),
    )


@pytest.mark.points(1)
def test_parameter_budget(model):
    """The model has at most 500,000 parameters."""

    def over_budget(params, budget):
        biggest = largest_layer(model)
        return (
            f"Your model has {params:,} parameters; the budget is {budget:,}. Its largest "
            f"layer is `{biggest.name}` with {biggest.count_params():,}. A Dense layer right after "
            "Flatten on a large image is expensive: let convolution and pooling shrink the image first."
        )

    check_parameter_budget(model, PARAMETER_BUDGET, message=over_budget)


@pytest.mark.points(4)
def test_test_accuracy(model, scaled_test_images, cifar, feedback):
    """At least 70 % of the test images (divided by 255) are classified correctly."""
    predictions = predict(model, scaled_test_images, what="the CIFAR-10 test images divided by 255")
    assert predictions.ndim == 2 and predictions.shape[1] == 10, (
        f"Your model returns predictions of shape {predictions.shape} for the test set; accuracy "
        "needs 10 outputs per image, one per class."
    )
    accuracy = float(np.mean(np.argmax(predictions, axis=1) == cifar["y_test"]))
    feedback.metric("test_accuracy", accuracy)
    feedback.classification(cifar["y_test"], np.argmax(predictions, axis=1), class_names=CLASS_NAMES)

    def private_accuracy(images, labels):
        scaled = images.astype("float32") / 255
        found = predict(model, scaled, what="training images divided by 255")
        return float(np.mean(np.argmax(found, axis=1) == labels.ravel()))

    check_test_set_unseen("cifar10", accuracy, len(cifar["y_test"]), private_accuracy, feedback)
    grade_by_threshold(
        accuracy, full=TARGET_ACCURACY, partial=PARTIAL_ACCURACY,
        partial_message=(
            f"Your model classifies {accuracy:.1%} of the test images correctly; the target is "
            f"{TARGET_ACCURACY:.0%}. Train for more epochs, add BatchNormalization after the "
            "convolutions, or let the learning rate decay during training."
        ),
        message=(
            f"Your model classifies only {accuracy:.1%} of the test images correctly; the target is "
            f"{TARGET_ACCURACY:.0%}. Check that it trained on all {TRAIN_SIZE:,} training images divided "
            "by 255 (the grader tests it on images scaled that way) and that the validation accuracy "
            "rose during training. A network of Dense layers alone rarely passes 55 % here: use "
            "convolutions."
        ),
    )
