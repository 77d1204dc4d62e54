"""Hidden checks for fashion_mnist_regularisation: the lecture's Fashion-MNIST
network (Flatten, two Dense(512, relu), Dense(10, softmax)) trained as it
is (`plain_model`), then regularised with L2 weight decay, Dropout and early
stopping (`regularised_model`), both validated on a split of the training
images.

**Which images.** The notebook trains both networks on the first
N_USED = 10,000 training images it is served, with ``validation_split=0.2``:
Keras fits on the first 8,000 of them and validates on the last 2,000. When
the grader holds its private slice back, the kernel is served the training
rows without that slice, in their original order, so this suite finds the
same rows (:func:`notebook_rows`) and loads them itself from the canonical
files. Every figure below is recomputed here from the exported models.

**Which epoch a model's weights come from.** A model exported after ``fit``
holds the weights of one epoch: the last one, or the best one when early
stopping restored it. Keras records, for every epoch, the validation loss
(cross-entropy plus the L2 penalty of the weights, with Dropout off) and
the validation accuracy of exactly those weights. The suite computes the
same two figures for the exported model, on the notebook's validation rows
and on the test set, and looks for an epoch of the history that they match
(:func:`where_validated`): the loss within a relative ``LOSS_RTOL`` and the
accuracy within ``ACCURACY_TOL_IMAGES`` images. The loss is computed as
every backend computes it: from clipped probabilities (JAX, PyTorch) and
from the exact log-softmax of the last layer's scores (TensorFlow, which
differs when an overfitted model gives the true class less than 1e-7). On
the CPU an honest match agreed within 4e-7 over ten seeds (float32 against
float64 on the same weights), while the nearest other epoch lay at least
2.7e-4 away, so the match also names the epoch. When both sets match an
epoch, the closer match wins. A kernel that trained on a GPU with
TensorFloat-32 matrix products may agree less closely; that was not
measured.

- Validated on the test set (the lecture's ``validation_data=(x_test,
  y_test)``): the model's test figures are one epoch's validation figures,
  to float precision. A history whose validation data was another part of
  the training images matches neither set and passes that check: only
  the test set is refused. The exact match cannot happen by chance for an
  honest model: its test loss would have to equal one epoch's loss on
  2,000 other images to 1 part in 10,000, and its test accuracy (a multiple
  of 1/10,000) that epoch's (a multiple of 1/2,000).
- Early stopping restored the best weights: the matched epoch is the one
  with the lowest validation loss, and training went on past it (otherwise
  early stopping never acted).

Pixels fed in another scale than x / 255 (raw 0-255, or the lecture's
x / 255 - 0.5) are recognised by the same match, so a model trained on them
is judged by its history with the scale it was trained on and loses only
the accuracy points, with a hint to scale.

**The gap.** Overfitting shows as a training loss far below the test loss.
Both gaps are cross-entropies recomputed from the models' predictions
(``checks.mean_crossentropy``, so the L2 penalty is not counted) on the
8,000 images they trained on and on the 10,000 test images; the
regularised model's gap must be at most ``GAP_RATIO`` times the plain one's.

Thresholds come from the reference recipe over ten seeds
(benchmarks/fashion_mnist_regularisation_thresholds.py, docs/thresholds.md):
test accuracy 0.8415-0.8553 (target 0.82), gap ratio 0.32-0.51 (at most
0.70) with plain gaps 0.35-0.49 (at least 0.15; one or two epochs give
0.06-0.07), history / recomputed training loss 0.65-1.21 (band 0.4-2.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from autograder.checks import (
    check_input_shape,
    check_reported_loss,
    check_softmax_over,
    check_test_set_unseen,
    declared_input_shape,
    flat_layers,
    grade_by_threshold,
    layer_activation,
    mean_crossentropy,
    model_fixture,
    predict,
    weighted_layers,
)
from autograder.datasets import fashion_mnist, served

N_USED = 10_000           # the first training images the notebook is served and uses
VALIDATION_SPLIT = 0.2    # the share of them Keras keeps, at the end, for validation
N_FIT = int(np.floor(N_USED * (1 - VALIDATION_SPLIT)))  # 8,000, as Keras splits
N_VAL = N_USED - N_FIT
N_TEST = 10_000
PLAIN_EPOCHS = 20       # what the notebook asks for plain_model
HIDDEN_UNITS = [512, 512]  # the lecture's network
TARGET_ACCURACY = 0.82    # full points, regularised_model on the test set
PARTIAL_ACCURACY = 0.75   # half the points
CHANCE_LEVEL = 0.3        # below this the model has learned next to nothing
SCALING_MARGIN = 0.10     # another pixel scale beats x / 255 by this much: trained on it
LOSS_RTOL = 1e-4          # a history's loss and the model's recomputed loss agree within this
ACCURACY_TOL_IMAGES = 2.5  # ... and their accuracies within this many images
GAP_RATIO = 0.7           # regularised gap <= this times the plain gap
MIN_PLAIN_GAP = 0.15      # the plain network must overfit at least this much to compare
# history's training loss / the model's recomputed training loss (plus its L2
# penalty), at the epoch the model holds: the band the reference falls in.
HISTORY_LOSS_BAND = (0.4, 2.5)
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SCALINGS = {
    "x / 255": lambda raw: raw / 255,
    "raw pixels (0 to 255)": lambda raw: raw,
    "x / 255 - 0.5": lambda raw: raw / 255 - 0.5,
}
"""The pixel scales a notebook may have trained on, the one asked for first."""
ASKED = "x / 255"


# ---------------------------------------------------------------- the notebook's images


def notebook_rows() -> tuple[np.ndarray, np.ndarray]:
    """Indices into the canonical training set of the rows the notebook
    fits on and validates on: the first N_USED rows it was served (all but
    the private slice when the grader held one back), split as
    ``validation_split`` splits them."""
    used = served.served_rows("fashion_mnist", served.holdout_seed_from_env())[:N_USED]
    return used[:N_FIT], used[N_FIT:]


@dataclass
class Images:
    raw: np.ndarray      # float32 pixels 0-255, (N, 28, 28)
    labels: np.ndarray   # int64, (N,)
    what: str


def load_images() -> dict[str, Images]:
    """The notebook's training and validation images and the test set, as
    the grader loads them from the canonical files."""
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    fit_rows, val_rows = notebook_rows()
    return {
        "fit": Images(x_train[fit_rows].astype("float32"), y_train[fit_rows].astype("int64"),
                      f"the {N_FIT:,} images the notebook trains on"),
        "validation": Images(x_train[val_rows].astype("float32"), y_train[val_rows].astype("int64"),
                             f"the {N_VAL:,} validation images (the last {N_VAL:,} of the first "
                             f"{N_USED:,} training images)"),
        "test": Images(x_test.astype("float32"), y_test.astype("int64"),
                       f"the {N_TEST:,} test images"),
    }


@pytest.fixture(scope="module")
def data():
    return load_images()


plain_model = model_fixture("plain_model")
regularised_model = model_fixture("regularised_model")


def as_model_input(model, images):
    """The images in the shape the model declares: (N, 28, 28) or (N, 784)."""
    shape = declared_input_shape(model)
    if shape is not None and len(shape) > 1 and all(isinstance(d, int) for d in shape[1:]):
        if int(np.prod(shape[1:])) == 28 * 28:
            return images.reshape((len(images), *shape[1:]))
    return images


def l2_penalty(model) -> float:
    """What the model's weight regularisers add to its loss, as Keras adds it."""
    return float(sum(float(np.asarray(loss)) for loss in model.losses))


@dataclass
class Figures:
    outputs: np.ndarray
    crossentropy: float   # without the penalty, from the probabilities (checks.mean_crossentropy)
    loss: float           # as Keras reports it: that cross-entropy plus the penalty
    losses: tuple         # every way a backend computes that loss (see keras_losses)
    accuracy: float


def final_logits(model, x) -> np.ndarray | None:
    """The scores a Sequential model's last Dense layer feeds its softmax,
    computed layer by layer (Dropout off); ``None`` for any other model."""
    import keras

    layers = list(model.layers)
    if not (isinstance(model, keras.Sequential) and layers and type(layers[-1]).__name__ == "Dense"
            and layer_activation(layers[-1]) == "softmax"):
        return None
    try:
        hidden = x
        for layer in layers[:-1]:
            hidden = layer(hidden, training=False)
        weights = layers[-1].get_weights()
        logits = np.asarray(hidden, dtype="float64") @ weights[0].astype("float64")
        return logits + weights[1] if len(weights) > 1 else logits
    except Exception:  # a layer that cannot be called alone: fall back on the probabilities
        return None


def keras_losses(outputs, logits, labels) -> tuple:
    """The cross-entropy as each Keras backend computes it. JAX and PyTorch
    clip the probabilities to [1e-7, 1 - 1e-7] (checks.mean_crossentropy);
    TensorFlow reads the scores behind a softmax layer and takes their exact
    log-softmax, which differs when the model gives the true class less than
    1e-7, as an overfitted network does for a few images."""
    clipped = mean_crossentropy(outputs, labels)
    if logits is None:
        return (clipped,)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return (clipped, float(-np.mean(log_p[np.arange(len(labels)), labels])))


_FIGURES: dict = {}


def figures(model, name: str, images: Images, scaling: str = ASKED) -> Figures:
    """The model's outputs, losses and accuracy on ``images`` in ``scaling``,
    computed once per model, set and scale."""
    key = (name, images.what, scaling)
    if key not in _FIGURES:
        x = as_model_input(model, SCALINGS[scaling](images.raw))
        out = predict(model, x, what=f"{images.what}, pixels as {scaling}").astype("float64")
        assert out.ndim == 2 and out.shape == (len(x), 10), (
            f"For {images.what} `{name}` returns shape {out.shape}; it should return "
            f"({len(x)}, 10): one probability per kind of clothing. End it with "
            "Dense(10, activation=\"softmax\")."
        )
        penalty = l2_penalty(model)
        losses = tuple(loss + penalty for loss in keras_losses(out, final_logits(model, x), images.labels))
        _FIGURES[key] = Figures(out, losses[0] - penalty, losses[0], losses,
                                float(np.mean(np.argmax(out, axis=1) == images.labels)))
    return _FIGURES[key]


def accuracy_key(history) -> str | None:
    """The history's validation accuracy, under whatever name the metric got."""
    for key in ("val_accuracy", "val_acc", "val_sparse_categorical_accuracy",
                "val_categorical_accuracy"):
        if key in history:
            return key
    return None


def matching_epoch(history, found: Figures, n_images: int) -> tuple[int, float] | None:
    """The epoch whose validation figures ``found`` matches, with the relative
    distance of the losses; ``None`` when no epoch matches."""
    losses = history.get("val_loss") or []
    accuracies = history.get(accuracy_key(history) or "", [])
    best = None
    for epoch, loss in enumerate(losses):
        distances = [abs(loss - mine) / mine for mine in found.losses if np.isfinite(mine) and mine > 0]
        if not np.isfinite(loss) or not distances:
            continue
        distance = min(distances)
        if distance > LOSS_RTOL:
            continue
        if len(accuracies) == len(losses) and abs(accuracies[epoch] - found.accuracy) * n_images > ACCURACY_TOL_IMAGES:
            continue
        if best is None or distance < best[1]:
            best = (epoch, distance)
    return best


@dataclass
class Match:
    source: str    # "validation" (the notebook's split) or "test"
    epoch: int
    scaling: str


_MATCHES: dict = {}


def where_validated(model, name: str, history, data) -> Match | None:
    """Which images `history`'s validation figures were measured on, which of
    its epochs the model's weights come from, and in which pixel scale: the
    closest match of the model's figures on the notebook's validation rows
    and on the test set (see the module's docstring). ``None`` when neither
    matches any epoch."""
    if name not in _MATCHES:
        found = None
        for scaling in SCALINGS:
            candidates = []
            for source in ("validation", "test"):
                match = matching_epoch(history, figures(model, name, data[source], scaling),
                                       len(data[source].labels))
                if match is not None:
                    candidates.append((match[1], Match(source, match[0], scaling)))
            if candidates:
                found = min(candidates, key=lambda c: c[0])[1]
                break
        _MATCHES[name] = found
    return _MATCHES[name]


def validation_losses(history, name: str) -> list[float]:
    losses = history.get("val_loss")
    assert losses, (
        f"`{name}` has no validation loss (`val_loss`), so nothing shows how the model does on "
        f"images it does not learn from. Pass validation_split={VALIDATION_SPLIT} to fit: Keras then "
        f"keeps the last {VALIDATION_SPLIT:.0%} of the {N_USED:,} images apart and measures them after "
        "every epoch."
    )
    return losses


# ---------------------------------------------------------------- the networks


def dense_layers(model):
    return [layer for layer in weighted_layers(model) if type(layer).__name__ == "Dense"]


def dropout_layers(model):
    return [layer for layer in flat_layers(model) if type(layer).__name__.endswith("Dropout")]


def l2_weight(regularizer) -> float:
    """The L2 factor of a weight regulariser (0 without one, or without L2)."""
    if regularizer is None:
        return 0.0
    try:
        return float(regularizer.get_config().get("l2") or 0.0)
    except (AttributeError, TypeError, ValueError):
        return 0.0


def regularisers_of(layer) -> list[str]:
    """The kinds of regularisation a layer applies to its weights or outputs."""
    return [kind for kind in ("kernel_regularizer", "bias_regularizer", "activity_regularizer")
            if getattr(layer, kind, None) is not None]


def check_decks_layers(model, name: str, data):
    """Input (28, 28) or (784,), Dense layers of 512, 512 and 10 units, a
    softmax over the 10 classes."""
    check_input_shape(model, (28, 28), (784,), message=lambda shape: (
        f"`{name}` was built for inputs of shape {shape}. Start it with "
        "keras.Input(shape=(28, 28)) followed by keras.layers.Flatten(), as the lecture's network does."
    ))
    units = [layer.units for layer in dense_layers(model)]
    assert units == [*HIDDEN_UNITS, 10], (
        f"`{name}` has Dense layers of {units} units; the lecture's network has "
        f"{[*HIDDEN_UNITS, 10]}: two hidden layers of 512 relu units and an output of 10, one per "
        "kind of clothing. Keep exactly these, so that what changes between the two models is the "
        "regularisation alone."
    )
    sample = as_model_input(model, data["test"].raw[:4] / 255)
    check_softmax_over(
        model, sample, 10, what="four test images",
        wrong_shape=lambda shape: (
            f"For 4 images `{name}` returns shape {shape}; it should return (4, 10). End it "
            "with Dense(10, activation=\"softmax\")."),
        not_probabilities=lambda activation, sums: (
            f"`{name}`'s last layer applies {activation!r}, and its rows add up to between "
            f"{sums.min():.2f} and {sums.max():.2f}: they are not probabilities. End it with "
            "Dense(10, activation=\"softmax\"), which sparse_categorical_crossentropy expects."),
    )


@pytest.mark.points(1)
def test_plain_model_is_the_decks_network(plain_model, data):
    """plain_model is the lecture's network as it is: Flatten, Dense(512), Dense(512), Dense(10, softmax), unregularised."""
    check_decks_layers(plain_model, "plain_model", data)
    dropouts = dropout_layers(plain_model)
    regularised = [f"`{layer.name}` ({', '.join(regularisers_of(layer))})"
                   for layer in weighted_layers(plain_model) if regularisers_of(layer)]
    assert not dropouts and not regularised, (
        "`plain_model` should be the lecture's network as it is, without regularisation, so that "
        "it shows what regularisation changes; it has "
        + " and ".join(part for part in (
            f"{len(dropouts)} Dropout layer(s)" if dropouts else "",
            "a regulariser on " + ", ".join(regularised) if regularised else "") if part)
        + ". Keep those for `regularised_model`."
    )


@pytest.mark.points(2)
def test_regularised_model_has_l2_and_dropout(regularised_model, data):
    """regularised_model is the same network with an L2 penalty on its hidden Dense kernels and at least one Dropout layer."""
    check_decks_layers(regularised_model, "regularised_model", data)
    hidden = dense_layers(regularised_model)[:-1]
    without = [layer.name for layer in hidden if l2_weight(getattr(layer, "kernel_regularizer", None)) <= 0]
    rates = [float(getattr(layer, "rate", 0) or 0) for layer in dropout_layers(regularised_model)]
    problems = []
    if without:
        problems.append(
            f"its hidden Dense layer(s) {', '.join(f'`{n}`' for n in without)} have no L2 penalty on "
            "their weights: give each kernel_regularizer=keras.regularizers.L2(1e-4) (the lecture's "
            "regularizers.l2(0.0001)), which adds 0.0001 times the sum of the squared weights to the "
            "loss and so keeps the weights small")
    if not any(rate > 0 for rate in rates):
        problems.append(
            "it has no Dropout layer with a rate above 0: add keras.layers.Dropout(0.3) after each "
            "hidden layer, which silences a random 30% of its units at every training step so that "
            "no unit can count on another")
    assert not problems, "`regularised_model` is not regularised as asked: " + "; and ".join(problems) + "."


# ---------------------------------------------------------------- validation and early stopping


@pytest.mark.points(2)
def test_validation_is_not_the_test_set(artifacts, data):
    """Both histories were validated on images taken from the training set, never on the test set."""
    offences = []
    for name in ("plain", "regularised"):
        history = artifacts.history(f"{name}_history")
        validation_losses(history, f"{name}_history")
        match = where_validated(artifacts.model(f"{name}_model"), f"{name}_model", history, data)
        if match is not None and match.source == "test":
            offences.append((name, match))
    if not offences:
        return
    which = " and ".join(f"`{name}_history`" for name, _ in offences)
    name, match = offences[0]
    raise AssertionError(
        f"{which} {'was' if len(offences) == 1 else 'were'} validated on the test set: the loss and "
        f"accuracy that `{name}_history` records for epoch {match.epoch + 1} are exactly what "
        f"`{name}_model` gets on the {N_TEST:,} test images. The lecture's code passes "
        "validation_data=(x_test, y_test), but then every choice made by watching the validation "
        "curves (when to stop, which weights to keep, how strong a penalty) is fitted to the test "
        "set, and the test accuracy is no longer an honest measure of how the model does on new "
        "images. Validate on part of the training images instead, "
        f"validation_split={VALIDATION_SPLIT}, and look "
        "at the test set once, at the very end."
    )


@pytest.mark.points(2)
def test_early_stopping_restored_the_best_weights(artifacts, data):
    """regularised_model holds the weights of the epoch with the lowest validation loss in regularised_history, and training stopped after it."""
    history = artifacts.history("regularised_history")
    losses = validation_losses(history, "regularised_history")
    model = artifacts.model("regularised_model")
    match = where_validated(model, "regularised_model", history, data)
    if match is None:
        mine = figures(model, "regularised_model", data["validation"])
        raise AssertionError(
            f"On {data['validation'].what}, scaled with x / 255, `regularised_model` has a loss of "
            f"{mine.loss:.4f} (cross-entropy plus its L2 penalty) and an accuracy of "
            f"{mine.accuracy:.1%}, which match none of the {len(losses)} epochs of "
            f"`regularised_history` (validation losses from {min(losses):.4f} to {max(losses):.4f}). "
            "So the grader cannot tell which epoch the model's weights come from. Train with "
            f"validation_split={VALIDATION_SPLIT} on the first {N_USED:,} training images, as part 5 "
            "asks, keep what fit returns (`regularised_history = regularised_model.fit(...)`) and do "
            "not change or rebuild the model afterwards."
        )
    best = int(np.argmin(losses))
    if abs(losses[match.epoch] - losses[best]) > LOSS_RTOL * losses[best]:
        raise AssertionError(
            f"`regularised_model` holds the weights of epoch {match.epoch + 1} (validation loss "
            f"{losses[match.epoch]:.4f}), but the validation loss was lowest at epoch {best + 1} "
            f"({losses[best]:.4f}). Early stopping ends training some epochs after the best one; "
            "to get that epoch's weights back, create the callback with restore_best_weights=True: "
            "keras.callbacks.EarlyStopping(monitor=\"val_loss\", patience=4, restore_best_weights=True)."
        )
    assert best < len(losses) - 1, (
        f"The validation loss in `regularised_history` was still at its lowest in the last epoch, "
        f"epoch {len(losses)}: training ended before the validation loss stopped improving, so "
        "early stopping never had to act. Give fit more epochs than it needs (for example "
        "epochs=50) together with keras.callbacks.EarlyStopping(monitor=\"val_loss\", patience=4, "
        "restore_best_weights=True): it ends training once the validation loss has not improved "
        "for 4 epochs, and puts back the best weights."
    )


# ---------------------------------------------------------------- test accuracy


@pytest.mark.points(3)
def test_test_accuracy(regularised_model, data, feedback):
    """regularised_model's accuracy on the 10,000 test images, scaled with x / 255, reaches the target."""
    test = figures(regularised_model, "regularised_model", data["test"])
    acc = test.accuracy
    feedback.metric("test_accuracy", acc)
    feedback.classification(data["test"].labels, np.argmax(test.outputs, axis=1), class_names=CLASS_NAMES)

    def private_accuracy(images, labels):
        x = as_model_input(regularised_model, images.astype("float32") / 255)
        out = predict(regularised_model, x, what="training images scaled to [0, 1]")
        return float(np.mean(np.argmax(out, axis=1) == np.asarray(labels).ravel()))

    check_test_set_unseen("fashion_mnist", acc, N_TEST, private_accuracy, feedback)

    def shortfall():
        message = (
            f"On the {N_TEST:,} test images, scaled with x / 255, `regularised_model` is right "
            f"{acc:.1%} of the time; the target is {TARGET_ACCURACY:.0%}. "
        )
        for scaling in SCALINGS:
            if scaling == ASKED:
                continue
            other = figures(regularised_model, "regularised_model", data["test"], scaling).accuracy
            if other >= acc + SCALING_MARGIN:
                return message + (
                    f"With the pixels as {scaling} it does much better ({other:.1%}): it was trained "
                    "on pixels in that scale. The grader, like the notebook, feeds x / 255 (values in "
                    "[0, 1]): scale the training images that way in part 1 and train again."
                )
        if acc < CHANCE_LEVEL:
            return message + (
                "That is close to guessing (10%): the model looks untrained. Did fit run without an "
                "error, on the scaled images and their labels?"
            )
        return message + (
            "The penalty or the Dropout rate may be too strong for the model to learn (try the "
            "lecture's L2 factor 0.0001 and a rate of 0.3), or early stopping may have stopped too "
            "soon (a patience of 4 epochs)."
        )

    grade_by_threshold(acc, full=TARGET_ACCURACY, partial=PARTIAL_ACCURACY, message=shortfall)


# ---------------------------------------------------------------- the gap


@pytest.mark.points(2)
def test_regularisation_narrows_the_gap(artifacts, data, feedback):
    """regularised_model's test loss lies much closer to its training loss than plain_model's does."""
    gaps = {}
    for name in ("plain", "regularised"):
        history = artifacts.history(f"{name}_history")
        model = artifacts.model(f"{name}_model")
        match = where_validated(model, f"{name}_model", history, data) if history.get("val_loss") else None
        scaling = match.scaling if match is not None else ASKED
        fit = figures(model, f"{name}_model", data["fit"], scaling)
        test = figures(model, f"{name}_model", data["test"], scaling)
        train_losses = history.get("loss") or [np.nan]
        epoch = match.epoch if match is not None and match.epoch < len(train_losses) else len(train_losses) - 1
        check_reported_loss(
            train_losses[epoch], fit.loss, within=HISTORY_LOSS_BAND, name=f"{name}_history",
            data=f"{data['fit'].what} (cross-entropy plus the L2 penalty, pixels as {scaling})",
            hint=f"Train both models on the first {N_USED:,} training images with "
                 f"validation_split={VALIDATION_SPLIT}, as the notebook asks: the grader measures "
                 "the training loss on the images they were fitted on.",
        )
        gaps[name] = (fit.crossentropy, test.crossentropy, test.crossentropy - fit.crossentropy)
        feedback.metric(f"{name}_gap", gaps[name][2])
    (plain_train, plain_test, plain_gap), (reg_train, reg_test, reg_gap) = gaps["plain"], gaps["regularised"]
    said = (
        f"Cross-entropy on the {N_FIT:,} training images and on the {N_TEST:,} test images: "
        f"`plain_model` {plain_train:.3f} and {plain_test:.3f} (gap {plain_gap:.3f}), "
        f"`regularised_model` {reg_train:.3f} and {reg_test:.3f} (gap {reg_gap:.3f}). "
    )
    assert plain_gap >= MIN_PLAIN_GAP, said + (
        f"`plain_model` barely overfits (a gap below {MIN_PLAIN_GAP}), so there is nothing for "
        "regularisation to fix. Train it as part 3 asks, without regularisation and for the full "
        f"{PLAIN_EPOCHS} epochs on the first {N_USED:,} images: its training loss should fall far below its "
        "validation loss."
    )
    assert reg_gap <= GAP_RATIO * plain_gap, said + (
        f"Regularisation should make the gap clearly smaller, at most {GAP_RATIO:.0%} of the plain "
        f"network's ({GAP_RATIO * plain_gap:.3f}); yours is {reg_gap / plain_gap:.0%} of it. "
        "Check that the L2 penalty and Dropout are in `regularised_model`, and that early stopping "
        "kept the weights of the best epoch rather than those of the last."
    )
