"""The rubric helpers of autograder.checks on tiny in-process Keras models:
what each returns, awards or raises, with the message the suite gave it."""

import keras
import numpy as np
import pytest

from autograder.checks import (
    PartialCredit,
    check_input_shape,
    check_parameter_budget,
    check_parameter_count,
    check_single_linear_unit,
    check_softmax_over,
    grade_by_threshold,
    largest_layer,
)


def model(input_shape, *layers):
    return keras.Sequential([keras.Input(shape=input_shape), *layers])


@pytest.mark.parametrize("value, higher, outcome", [
    (0.9, True, "full"), (0.8, True, "full"), (0.7, True, "partial"), (0.5, True, "fail"),
    (2.0, False, "full"), (3.0, False, "full"), (3.5, False, "partial"), (9.0, False, "fail"),
    (float("nan"), False, "fail"),
])
def test_grade_by_threshold_ladder(value, higher, outcome):
    full, partial = (0.8, 0.6) if higher else (3.0, 4.0)
    kwargs = dict(full=full, partial=partial, higher_is_better=higher, message="short")
    if outcome == "full":
        assert grade_by_threshold(value, **kwargs) is None
    elif outcome == "partial":
        with pytest.raises(PartialCredit) as caught:
            grade_by_threshold(value, **kwargs)
        assert (caught.value.fraction, caught.value.message) == (0.5, "short")
    else:
        with pytest.raises(AssertionError, match="^short$"):
            grade_by_threshold(value, **kwargs)


def test_grade_by_threshold_messages_are_lazy_and_partial_may_differ():
    def never():
        raise RuntimeError("a passing value needs no message")

    grade_by_threshold(1.0, full=0.9, partial=0.5, message=never, partial_message=never)
    with pytest.raises(PartialCredit) as caught:
        grade_by_threshold(0.6, full=0.9, partial=0.5, message="fail", partial_message=lambda: "half",
                           fraction=0.25)
    assert (caught.value.fraction, caught.value.message) == (0.25, "half")
    with pytest.raises(AssertionError, match="^fail$"):
        grade_by_threshold(0.1, full=0.9, partial=0.5, message=lambda: "fail", partial_message="half")


def test_check_input_shape():
    check_input_shape(model((3,), keras.layers.Dense(1)), (3,), message="never")
    check_input_shape(model((784,), keras.layers.Dense(1)), (28, 28), (784,), message="never")
    with pytest.raises(AssertionError, match=r"^built for \(None, 4\)$"):
        check_input_shape(model((4,), keras.layers.Dense(1)), (3,), message="built for {shape}")
    with pytest.raises(AssertionError, match=r"^got \(None, 5\)!$"):
        check_input_shape(model((5,), keras.layers.Dense(1)), (3,), message=lambda shape: f"got {shape}!")


def test_parameter_count_and_budget():
    linear = model((3,), keras.layers.Dense(1))
    check_parameter_count(linear, 4, message="never")
    with pytest.raises(AssertionError, match="^4 parameters$"):
        check_parameter_count(linear, 14, message="{params} parameters")
    big = model((100,), keras.layers.Dense(50), keras.layers.Dense(1))
    check_parameter_budget(big, 5_101, message="never")
    with pytest.raises(AssertionError, match="^5,101 > 5,000$"):
        check_parameter_budget(big, 5_000, message="{params:,} > {budget:,}")
    assert largest_layer(big).count_params() == 5_050
    assert largest_layer(big, "Conv2D") is None


@pytest.mark.parametrize("layers, message", [
    ([keras.layers.Dense(4), keras.layers.Dense(1)], "2 layers"),
    ([keras.layers.BatchNormalization()], "a BatchNormalization"),
    ([keras.layers.Dense(2)], "2 units"),
    ([keras.layers.Dense(1, activation="relu")], "'relu'"),
    ([keras.layers.Dense(1)], None),
])
def test_check_single_linear_unit(layers, message):
    texts = dict(layer_count="{count} layers", layer_kind="a {kind}", units="{units} units",
                 activation="{activation!r}")
    if message is None:
        check_single_linear_unit(model((3,), *layers), **texts)
    else:
        with pytest.raises(AssertionError) as caught:
            check_single_linear_unit(model((3,), *layers), **texts)
        assert str(caught.value) == message


def test_check_softmax_over():
    sample = np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    texts = dict(what="eight rows", wrong_shape="shape {shape}",
                 not_probabilities=lambda activation, sums: f"{activation}: {sums.min():.2f}")
    out = check_softmax_over(model((4,), keras.layers.Dense(3, activation="softmax")), sample, 3, **texts)
    assert out.shape == (8, 3)
    with pytest.raises(AssertionError, match=r"^shape \(8, 2\)$"):
        check_softmax_over(model((4,), keras.layers.Dense(2, activation="softmax")), sample, 3, **texts)
    with pytest.raises(AssertionError, match="^sigmoid: "):
        check_softmax_over(model((4,), keras.layers.Dense(3, activation="sigmoid")), sample, 3, **texts)
    with pytest.raises(AssertionError, match="^softmax: 1.00$"):
        check_softmax_over(model((4,), keras.layers.Dense(3, activation="softmax")), sample, 3,
                           refuse=("softmax",), **texts)
