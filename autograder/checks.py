"""Helpers for writing hidden-suite checks.

A check is a pytest test. It passes, fails with an ``assert`` whose message
teaches ("Your output layer needs 10 units, one per class"), awards part of
its points with :func:`partial_credit`, or finds that the student never
produced what it needs (:class:`NotAttempted`, raised by the artifact
fixtures). Models are inspected through public Keras API only: layers and
their configs, ``count_params()`` and real forward passes.
"""

from __future__ import annotations

import re

import numpy as np


class NotAttempted(Exception):
    """What the check needs does not exist: the exercise was not attempted."""


class PartialCredit(Exception):
    """End a check with ``fraction`` of its points and a message saying why."""

    def __init__(self, fraction: float, message: str):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be within [0, 1], got {fraction}")
        super().__init__(message)
        self.fraction = fraction
        self.message = message


def partial_credit(fraction: float, message: str):
    """Stop the current check, awarding ``fraction`` of its points."""
    raise PartialCredit(fraction, message)


def flat_layers(model) -> list:
    """Every layer of ``model`` in order, nested models opened up."""
    found = []
    for layer in model.layers:
        found.extend(flat_layers(layer) if hasattr(layer, "layers") else [layer])
    return found


def weighted_layers(model):
    """The layers of ``model`` that own weights, in order (nested models flattened)."""
    return [layer for layer in flat_layers(model) if layer.weights]


def layer_activation(layer) -> str | None:
    """The name of a layer's activation from its public config, if it has one."""
    activation = layer.get_config().get("activation")
    if isinstance(activation, dict):  # serialized custom or wrapped activation
        activation = activation.get("config", {}).get("name", activation.get("class_name"))
    return activation


def count_layers(model, class_name: str) -> int:
    """How many layers of a Keras class (by name, e.g. ``"Conv2D"``) the model has."""
    return sum(type(layer).__name__ == class_name for layer in flat_layers(model))


def declared_input_shape(model) -> tuple | None:
    """The input shape the model was built for, ``None`` for the batch axis."""
    try:
        return tuple(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def predict(model, x, *, what: str = "the data", batch_size: int = 1024) -> np.ndarray:
    """Run a real forward pass; a model that cannot take ``x`` fails the check
    with a message saying what shape it expected and what it was given."""
    try:
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    except Exception as exc:  # the model cannot take x: usually the shapes do not fit
        expected = declared_input_shape(model)
        built_for = f": it was built for inputs of shape {expected}." if expected else "."
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise AssertionError(
            f"Your model could not make predictions on {what} of shape {tuple(x.shape)}"
            f"{built_for} ({type(exc).__name__}: {first_line})"
        ) from None


def output_shape(model, sample) -> tuple:
    """Output shape of a forward pass on ``sample``, with ``None`` for the batch axis."""
    out = predict(model, sample, what="a sample batch")
    return (None, *out.shape[1:])


# ---------------------------------------------------------------- rubric helpers
#
# Each helper below is one criterion a suite grades, with the teaching text
# left to the suite: its messages are parameters. A message is either a
# ``str.format`` template of the fields the helper names (e.g.
# ``"Your model has {params:,} parameters"``) or a function that takes those
# fields as keywords and returns the text, for text that depends on them
# beyond substitution (or that needs the suite's own names).


def model_fixture(name: str):
    """A module-scoped fixture named ``name``: the student's model of that
    name, loaded once per suite (``NotAttempted`` when the notebook defines
    none). In a suite: ``linear_model = model_fixture("linear_model")``."""
    import pytest

    @pytest.fixture(scope="module", name=name)
    def student_model(artifacts):
        return artifacts.model(name)

    return student_model


def _say(message, **fields) -> str:
    return message(**fields) if callable(message) else message.format(**fields)


def grade_by_threshold(value: float, *, full: float, partial: float, message,
                       partial_message=None, higher_is_better: bool = True,
                       fraction: float = 0.5) -> None:
    """The full/partial/zero ladder of a measured criterion.

    Returns (full points) when ``value`` reaches ``full``; otherwise awards
    ``fraction`` of the points with ``partial_message`` (``message`` when
    there is none) when it reaches ``partial``, and fails with ``message``
    below that. "Reaches" is ``>=`` when ``higher_is_better`` (accuracy) and
    ``<=`` when not (an error); a NaN reaches neither. The messages are plain
    strings, or functions of no arguments called only when the value misses
    ``full``, for hints that cost a forward pass.
    """
    def reaches(threshold):
        return value >= threshold if higher_is_better else value <= threshold

    def say(text):
        return text() if callable(text) else text

    if reaches(full):
        return
    if reaches(partial):
        partial_credit(fraction, say(message if partial_message is None else partial_message))
    raise AssertionError(say(message))


def check_input_shape(model, *accepted: tuple, message) -> None:
    """Fail with ``message`` (field: ``shape``, the declared input shape)
    unless ``model`` was built for inputs of one of the ``accepted`` shapes
    (without the batch axis). A model that declares no input shape passes:
    the forward passes of the other checks judge it."""
    shape = declared_input_shape(model)
    if shape is not None and tuple(shape[1:]) not in accepted:
        raise AssertionError(_say(message, shape=shape))


def check_parameter_count(model, expected: int, *, message) -> None:
    """Fail with ``message`` (field: ``params``) unless ``model`` has exactly
    ``expected`` parameters."""
    params = model.count_params()
    if params != expected:
        raise AssertionError(_say(message, params=params))


def check_parameter_budget(model, budget: int, *, message) -> None:
    """Fail with ``message`` (fields: ``params``, ``budget``) when ``model``
    has more than ``budget`` parameters."""
    params = model.count_params()
    if params > budget:
        raise AssertionError(_say(message, params=params, budget=budget))


def largest_layer(model, class_name: str | None = None):
    """The layer of ``model`` with the most parameters (among its layers of
    the Keras class ``class_name``, when given); ``None`` when it has none."""
    layers = [layer for layer in weighted_layers(model)
              if class_name is None or type(layer).__name__ == class_name]
    return max(layers, key=lambda layer: layer.count_params(), default=None)


def check_single_linear_unit(model, *, layer_count, layer_kind, units, activation) -> None:
    """Fail unless ``model`` is one Dense layer of one unit without an
    activation: a linear model ``w . x + b``. The messages, in the order the
    checks run: ``layer_count`` (field ``count``: its layers with weights),
    ``layer_kind`` (field ``kind``: the class of its one layer), ``units``
    (field ``units``) and ``activation`` (field ``activation``)."""
    layers = weighted_layers(model)
    if len(layers) != 1:
        raise AssertionError(_say(layer_count, count=len(layers)))
    (layer,) = layers
    if type(layer).__name__ != "Dense":
        raise AssertionError(_say(layer_kind, kind=type(layer).__name__))
    if layer.units != 1:
        raise AssertionError(_say(units, units=layer.units))
    found = layer_activation(layer)
    if found not in (None, "linear"):
        raise AssertionError(_say(activation, activation=found))


def check_softmax_over(model, sample, n_classes: int, *, what: str, wrong_shape,
                       not_probabilities, refuse: tuple = ()) -> np.ndarray:
    """Fail unless ``model`` maps ``sample`` to one probability distribution
    over ``n_classes`` classes per row: non-negative outputs that add up to 1
    (within 1e-3), as a softmax output gives. ``wrong_shape`` (field
    ``shape``) says the output has another shape than
    ``(len(sample), n_classes)``; ``not_probabilities`` (fields
    ``activation``, the last weighted layer's, and ``sums``, each row's sum)
    says the rows are not distributions, or that the last layer's activation
    is one of ``refuse``. ``what`` names ``sample`` for :func:`predict`.
    Returns the outputs."""
    out = predict(model, sample, what=what)
    if out.shape != (len(sample), n_classes):
        raise AssertionError(_say(wrong_shape, shape=out.shape))
    activation = layer_activation(weighted_layers(model)[-1])
    sums = out.sum(axis=1)
    is_distribution = np.all(out >= 0) and np.allclose(sums, 1.0, atol=1e-3)
    if activation in refuse or not is_distribution:
        raise AssertionError(_say(not_probabilities, activation=activation, sums=sums))
    return out


MAX_MODEL_CONFIG_BYTES = 64 * 1024**2
"""Largest ``config.json`` read from a saved model; no model of the course comes near."""
_KERAS_MODULE = re.compile(r"keras(\.[A-Za-z_][A-Za-z0-9_]*)*")


def refuse_unsafe_model(path, name: str = "model") -> None:
    """Fail, naming the layer and saying why, when the ``.keras`` file at
    ``path`` holds anything safe loading refuses: a ``Lambda`` layer, a Python
    function (a lambda as an activation) or a class that is not Keras's own.

    The archive's ``config.json`` is read as plain JSON; nothing in it is
    imported or run. Called before ``keras.saving.load_model(safe_mode=True)``,
    whose own error would not say which layer is to blame.
    """
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_MODEL_CONFIG_BYTES:
                raise AssertionError(
                    f"Your `{name}` could not be graded: its saved configuration is "
                    f"{info.file_size / 1024**2:.0f} MiB, far more than any model of this course needs."
                )
            config = json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, RecursionError):
        raise AssertionError(
            f"The file saved for your `{name}` is not a Keras model archive. Make `{name}` "
            "a Keras model built in your notebook; the grader saves it itself."
        ) from None
    problems = _unsafe_parts(config)
    if not problems:
        return
    what, why = problems[0]
    more = f" ({len(problems) - 1} more part(s) of the model have the same problem.)" if len(problems) > 1 else ""
    raise AssertionError(f"Your `{name}` {what}: {why}{more}")


_SAFE_LOADING = "the grader loads models with safe loading, which refuses"


def _unsafe_parts(config) -> list[tuple[str, str]]:
    """What safe loading would refuse in a model's JSON config, in the order
    the layers appear: (what it is, why and what to do instead). The compile
    configuration (losses, metrics) is skipped: the grader never compiles."""
    problems = []
    stack = [(config, True, None)]
    while stack:
        node, top, layer = stack.pop()
        if isinstance(node, list):
            stack.extend((item, False, layer) for item in reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        where = f" in layer `{layer}`" if layer else ""
        if node.get("class_name") == "__lambda__" or _is_pickled_function(node):
            problems.append((
                f"uses a Python lambda or function{where} (for example as an activation)",
                f"{_SAFE_LOADING} Python code saved with a model because it could do anything "
                "when loaded. Use a built-in activation by name, e.g. activation=\"relu\".",
            ))
            continue
        if "module" in node and "class_name" in node and "config" in node:
            problem = _unsafe_object(node, top, where)
            if problem:
                problems.append(problem)
                continue
            inner = node["config"] if isinstance(node["config"], dict) else {}
            layer = inner.get("name") or layer
        stack.extend(
            (value, False, layer) for key, value in reversed(list(node.items()))
            if key != "compile_config"
        )
    return problems


def _is_pickled_function(node: dict) -> bool:
    """Keras saves a plain Python function (not a registered one) as its bytecode."""
    value = node.get("value")
    return set(node) == {"value"} and isinstance(value, list) and bool(value) and isinstance(value[0], str)


_NOT_KERAS = (
    f"{_SAFE_LOADING} classes and functions that are not part of Keras, because their code "
    "would have to run in the grader, whether or not they are registered."
)


def _unsafe_object(node: dict, top: bool, where: str) -> tuple[str, str] | None:
    class_name = str(node.get("class_name"))
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    layer = config.get("name") or node.get("name")
    called = f" `{layer}`" if layer else ""
    if class_name == "Lambda" and _is_keras(node):
        return (
            f"has a Lambda layer{called}",
            f"{_SAFE_LOADING} Lambda layers because they carry arbitrary Python code. "
            "Replace it with built-in layers (e.g. keras.layers.Rescaling to scale inputs, "
            "keras.layers.Reshape or keras.layers.Flatten to change shapes).",
        )
    if _is_keras(node):
        return None
    if node.get("module") == "builtins" and class_name == "function":
        return (
            f"uses your own function `{node.get('config')}`{where}",
            f"{_NOT_KERAS} Use a built-in activation by name, e.g. activation=\"relu\".",
        )
    if top:
        return (
            f"is an instance of your own class `{class_name}`",
            f"{_NOT_KERAS} Build the model with keras.Sequential or the functional API "
            "(keras.Model(inputs, outputs)) from built-in layers.",
        )
    return (
        f"uses the custom class `{class_name}`" + (f" (layer{called})" if layer else where),
        f"{_NOT_KERAS} Use built-in keras.layers instead.",
    )


def _is_keras(node: dict) -> bool:
    """Whether a serialized object names a class Keras itself defines."""
    import importlib

    module, class_name = node.get("module"), node.get("class_name")
    registered = node.get("registered_name")
    if not isinstance(module, str) or not isinstance(class_name, str):
        return False
    if not _KERAS_MODULE.fullmatch(module) or registered not in (None, class_name):
        return False
    try:
        return isinstance(getattr(importlib.import_module(module), class_name, None), type)
    except Exception:  # a module name Keras does not have
        return False


def mean_crossentropy(outputs, labels, *, epsilon: float = 1e-7) -> float:
    """The cross-entropy -log p(true class), averaged over rows, as Keras's
    (sparse_)categorical_crossentropy computes it for the same ``outputs``.

    ``labels`` are integers of shape (N,) or (N, 1), or one-hot rows (N, C).
    Outputs within [0, 1] are read as probabilities: clipped to
    [epsilon, 1 - epsilon] and divided by their row sum, as Keras does.
    Outputs with a value outside [0, 1] are read as logits (a model compiled
    with ``from_logits=True``) and go through a softmax first.
    """
    out = np.asarray(outputs, dtype="float64")
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == out.shape[1] > 1:
        labels = np.argmax(labels, axis=1)
    labels = labels.reshape(len(out)).astype("int64")
    if np.min(out) < 0 or np.max(out) > 1:
        shifted = out - out.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    else:
        p = np.clip(out, epsilon, 1 - epsilon)
        log_p = np.log(p) - np.log(p.sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(out)), labels]))


def loss_ratio(reported: float, recomputed: float) -> float:
    """How many times larger the loss a kernel reported is than the loss the
    grader recomputed: 1 when they agree, infinite when only the grader's is 0."""
    reported, recomputed = float(reported), float(recomputed)
    if recomputed > 0:
        return reported / recomputed
    return 1.0 if reported == 0 else np.inf


def reported_loss_agrees(reported: float, recomputed: float, *,
                         within: tuple[float, float]) -> bool:
    """Whether both losses are numbers and ``reported / recomputed`` lies
    within the band ``within`` = (low, high), which must contain 1."""
    low, high = within
    if not low <= 1 <= high:
        raise ValueError(f"the band {within} must contain 1 (losses that agree)")
    finite = bool(np.isfinite(reported) and np.isfinite(recomputed))
    return finite and low <= loss_ratio(reported, recomputed) <= high


def check_reported_loss(reported: float, recomputed: float, *, within: tuple[float, float],
                        name: str = "history", data: str = "the training data",
                        hint: str = "") -> float:
    """Fail unless a loss the student's kernel reported (the last epoch of
    ``history``, or a number the notebook printed) belongs to the model the
    grader loaded: ``reported / recomputed`` must lie within ``within``
    (low, high), a band measured on the reference (docs/thresholds.md).

    The loss a History records for an epoch is the average over that epoch's
    batches, taken while the weights still changed and with Dropout active,
    so it is usually *higher* than the loss of the final weights: the band
    need not be centred on 1. Returns the ratio; the message says both
    numbers, which way they disagree, and ends with ``hint``.
    """
    low, high = within
    ratio = loss_ratio(reported, recomputed)
    if reported_loss_agrees(reported, recomputed, within=within):
        return ratio
    if not np.isfinite(recomputed):
        why = "your model's own loss there is not a number: it outputs NaN or infinity"
    elif not np.isfinite(reported):
        why = f"the loss in `{name}` is not a number"
    elif ratio < low:
        times = f"{1 / ratio:.1f} times " if ratio > 0 else ""
        why = (f"`{name}` claims a loss {times}lower than your model reaches, so it cannot come "
               "from training this model")
    else:
        why = (f"`{name}` reports a loss {ratio:.1f} times higher than your model gets, more than "
               "averaging over the last epoch, while the weights still changed and Dropout was "
               "active, explains")
    raise AssertionError(
        f"The loss in `{name}` ({float(reported):.3g}) is not what your model gets on {data} "
        f"({float(recomputed):.3g}): {why}. The grader checks what `{name}` says against the "
        f"model itself. Keep what model.fit returns (`{name} = model.fit(...)`), do not write "
        "or edit it by hand, and keep the model that this fit trained (do not rebuild it afterwards)."
        + (f" {hint}" if hint else "")
    )


TEST_DATA_SEEN_Z = 5.0
"""How many standard errors the test accuracy may lie above the accuracy on
the grader's private slice before the model is taken to have seen the test
set. Measured with ``benchmarks/test_set_gap.py`` (docs/thresholds.md)."""


def accuracy_gap_z(test_accuracy: float, n_test: int,
                   private_accuracy: float, n_private: int) -> float:
    """The two-proportion z statistic of ``test_accuracy - private_accuracy``:
    the gap in standard errors of a model that does equally well on both sets
    (pooled accuracy, so it is defined when one set is all right). A model
    that never saw either set lands near 0; one trained on the test set, far
    above. 0 when both accuracies are 0 or both 1."""
    pooled = (test_accuracy * n_test + private_accuracy * n_private) / (n_test + n_private)
    spread = pooled * (1 - pooled) * (1 / n_test + 1 / n_private)
    if spread <= 0:
        return 0.0
    return float((test_accuracy - private_accuracy) / np.sqrt(spread))


def check_test_set_unseen(dataset: str, test_accuracy: float, n_test: int,
                          accuracy_on, feedback) -> None:
    """Fail an accuracy check whose model does clearly better on the official
    test set than on the private slice of ``dataset``'s training images that
    the grader kept from the student's kernel (see
    :mod:`autograder.datasets.served`).

    Neither set was available to an honest model for training, so it does
    about as well on both; a model fitted on ``x_test`` (alone or with the
    training images) scores far higher on the test set. ``accuracy_on(x, y)``
    returns the model's accuracy on images and labels as the loader returns
    them (the suite prepares them as it prepares the test set). Records the
    metric ``private_slice_accuracy`` beside the suite's ``test_accuracy``.
    Does nothing when the grader did not hold a slice back (no holdout seed
    in the environment, as on the nbgrader path).
    """
    from autograder.datasets import served

    seed = served.holdout_seed_from_env()
    if seed is None:
        return
    x_private, y_private = served.private_slice(dataset, seed)
    private = float(accuracy_on(x_private, y_private))
    feedback.metric("private_slice_accuracy", private)
    if accuracy_gap_z(test_accuracy, n_test, private, len(x_private)) <= TEST_DATA_SEEN_Z:
        return
    raise AssertionError(
        f"Your model is right on {test_accuracy:.2%} of the {n_test:,} test images but only on "
        f"{private:.2%} of {len(x_private):,} training images the grader kept back, which it "
        "never saw either. A model that learned only from the training data does about as well "
        "on both, so yours seems to have seen the test data: it was trained (or tuned) on "
        "x_test / y_test. The accuracy points are withheld. The test set must stay unseen until "
        "the final measurement: train on the training images only, watch a validation set taken "
        "from them, and evaluate on the test set once at the end."
    )
