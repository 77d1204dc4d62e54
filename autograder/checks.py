"""Helpers for writing hidden-suite checks.

A check is a pytest test. It passes, fails with an ``assert`` whose message
teaches ("Your output layer needs 10 units, one per class"), awards part of
its points with :func:`partial_credit`, or finds that the student never
produced what it needs (:class:`NotAttempted`, raised by the artifact
fixtures). Models are inspected through public Keras API only: layers and
their configs, ``count_params()`` and real forward passes.
"""

from __future__ import annotations

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


def weighted_layers(model):
    """The layers of ``model`` that own weights, in order (nested models flattened)."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found.extend(weighted_layers(layer))
        elif layer.weights:
            found.append(layer)
    return found


def layer_activation(layer) -> str | None:
    """The name of a layer's activation from its public config, if it has one."""
    activation = layer.get_config().get("activation")
    if isinstance(activation, dict):  # serialized custom or wrapped activation
        activation = activation.get("config", {}).get("name", activation.get("class_name"))
    return activation


def count_layers(model, class_name: str) -> int:
    """How many layers of a Keras class (by name, e.g. ``"Conv2D"``) the model has."""
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):
            total += count_layers(layer, class_name)
        elif type(layer).__name__ == class_name:
            total += 1
    return total


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
