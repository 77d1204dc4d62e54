"""Hidden checks for boston_housing: normalisation, a linear model and an MLP.

The suite loads the Boston data itself, standardises the test features with
the training mean and standard deviation, and recomputes every error from the
loaded models. Thresholds come from the reference solution over five seeds:
linear test MAE 3.36-3.48 k$, MLP test MAE 2.45-2.69 k$, MLP/linear ratio
0.71-0.80. A least-squares fit on the training set reaches 3.46 k$ and one
fitted to the test set itself 3.00 k$, so a linear model trained on the
training set does not reach the MLP threshold.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from autograder.checks import (
    NotAttempted,
    check_input_shape,
    check_parameter_count,
    check_single_linear_unit,
    flat_layers,
    grade_by_threshold,
    layer_activation,
    model_fixture,
    partial_credit,
    predict,
)
from autograder.datasets import boston_housing

FEATURES = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE",
            "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]
N_TRAIN, N_TEST, N_FEATURES = 404, 102, 13

LINEAR_MAX_MAE = 4.0      # full points
LINEAR_PARTIAL_MAE = 5.0  # half the points
MLP_MAX_MAE = 3.0
MLP_PARTIAL_MAE = 3.5
MLP_TO_LINEAR = 0.9       # the MLP's MAE must be at most 90% of the linear model's
NONLINEAR_LAYERS = {"ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data():
    (x_train, y_train), (x_test, y_test) = boston_housing.load_data()
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    return SimpleNamespace(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        mean=mean, std=std,
        train_norm=(x_train - mean) / std,
        test_norm=(x_test - mean) / std,
    )


linear_model = model_fixture("linear_model")
mlp_model = model_fixture("mlp_model")


def predict_test_set(model, name, x):
    """One price per test town from a real forward pass, as float64 of shape (102,)."""
    out = predict(model, x, what=f"the {N_TEST} normalised test towns")
    assert out.shape == (N_TEST, 1), (
        f"For the {N_TEST} test towns `{name}` returns an array of shape {out.shape}; it "
        f"should return ({N_TEST}, 1): one price per town, so its last layer needs one unit."
    )
    return out[:, 0].astype("float64")


@pytest.fixture(scope="module")
def linear_out(linear_model, data):
    return predict_test_set(linear_model, "linear_model", data.test_norm)


@pytest.fixture(scope="module")
def mlp_out(mlp_model, data):
    return predict_test_set(mlp_model, "mlp_model", data.test_norm)


def student_array(artifacts, name, shape):
    """The student's exported array as float64, with the expected shape."""
    got = np.asarray(artifacts.array(name))
    assert np.issubdtype(got.dtype, np.number), (
        f"`{name}` should be an array of numbers, but it holds {got.dtype} values."
    )
    got = got.astype("float64")
    if got.shape != shape:
        hint = ""
        if got.shape == shape[::-1]:
            hint = " It looks transposed: keep one row per town and one column per feature."
        elif got.shape[:1] == (N_TEST,) and shape[0] == N_TRAIN:
            hint = " That is the size of the test set: this variable holds the training features."
        elif got.shape[:1] == (N_TRAIN,) and shape[0] == N_TEST:
            hint = " That is the size of the training set: this variable holds the test features."
        raise AssertionError(f"`{name}` has shape {got.shape}; it should have shape {shape}.{hint}")
    assert np.all(np.isfinite(got)), (
        f"`{name}` contains NaN or infinite values. Check for a division by a standard deviation "
        "of 0: compute the std per feature with axis=0."
    )
    return got


def feature_list(mask):
    return ", ".join(name for name, bad in zip(FEATURES, mask) if bad)


def mean_absolute_error(predicted, truth):
    return float(np.mean(np.abs(predicted - truth)))


def recorded_mae(predicted, data, feedback, *, metric, label):
    """The test MAE of ``predicted``, recorded as ``metric`` and plotted against the true prices."""
    mae = mean_absolute_error(predicted, data.y_test)
    feedback.metric(metric, mae)
    feedback.regression(data.y_test, predicted, label=label)
    return mae


def mae_hints(model, predicted, mae, data, artifacts):
    """Why a model's test MAE may be too high, in the student's terms."""
    if not np.all(np.isfinite(predicted)):
        return ("It predicts NaN or infinity: training diverged. Lower the learning rate and "
                "check that you trained on the normalised features.")
    try:
        own = np.asarray(artifacts.array("x_test_norm"), dtype="float64")
    except (NotAttempted, ValueError, TypeError):
        own = None
    if own is not None and own.shape == (N_TEST, N_FEATURES) and np.all(np.isfinite(own)):
        try:
            own_out = np.asarray(model.predict(own, verbose=0)).reshape(N_TEST, -1)[:, 0]
            own_mae = mean_absolute_error(own_out, data.y_test)
        except Exception:  # the student's model; any failure means no hint
            own_mae = np.inf
        if own_mae + 0.5 < mae:
            return (f"On your own `x_test_norm` its MAE is {own_mae:.2f} k$, but the grader "
                    "standardises the test features with the training mean and standard "
                    "deviation, as part 1 asks, and there it is worse. Check your normalisation: "
                    "the model learned a different input scale.")
    if np.std(predicted) < 1.0:
        return (f"It predicts nearly the same price for every town (spread {np.std(predicted):.2f} k$): "
                "it has barely learned from the features. Train for more epochs, and check that "
                "the loss goes down.")
    return "Train for more epochs, or check the learning rate, and make sure the loss has levelled off."


# ---------------------------------------------------------------- checks


@pytest.mark.points(1)
def test_training_features_are_standardised(artifacts, data):
    """x_train_norm has mean 0 and standard deviation 1 in every feature."""
    got = student_array(artifacts, "x_train_norm", (N_TRAIN, N_FEATURES))
    assert not np.allclose(got, data.x_train), (
        "`x_train_norm` holds the raw training features. Subtract `train_mean` and divide by "
        "`train_std` (both computed with axis=0)."
    )
    means, stds = got.mean(axis=0), got.std(axis=0)
    off_mean = np.abs(means) > 0.01
    assert not off_mean.any(), (
        f"Every column of `x_train_norm` should have mean 0, but {feature_list(off_mean)} "
        f"{'has' if off_mean.sum() == 1 else 'have'} mean {np.round(means[off_mean], 3)}. "
        "Subtract the per-feature mean, x_train.mean(axis=0): without axis=0 NumPy averages "
        "over all numbers at once."
    )
    if np.all(np.abs(stds - 0.5) < 0.01):
        raise AssertionError(
            "Every column of `x_train_norm` has standard deviation 0.5: you divided by 2 * std. "
            "Some material scales that way; this notebook asks for standard deviation 1, so "
            "divide by `train_std` itself."
        )
    off_std = np.abs(stds - 1) > 0.01
    assert not off_std.any(), (
        f"Every column of `x_train_norm` should have standard deviation 1, but "
        f"{feature_list(off_std)} {'has' if off_std.sum() == 1 else 'have'} "
        f"{np.round(stds[off_std], 3)}. Divide by the per-feature standard deviation, "
        "x_train.std(axis=0)."
    )
    assert np.allclose(got, data.train_norm, rtol=0.01, atol=0.01), (
        "`x_train_norm` has mean 0 and standard deviation 1, but it is not `x_train` "
        "standardised row by row. Make it from `x_train` itself, without shuffling, "
        "dropping or reordering towns."
    )


@pytest.mark.points(2)
def test_test_features_use_training_statistics(artifacts, data):
    """x_test_norm is standardised with the training mean and std, not its own."""
    got = student_array(artifacts, "x_test_norm", (N_TEST, N_FEATURES))
    # If the training features were scaled to another common std (2 * std gives
    # 0.5), judge the test set by the same scale: this check is about *which*
    # statistics were used.
    scale = 1.0
    try:
        train_norm = np.asarray(artifacts.array("x_train_norm"), dtype="float64")
        if train_norm.shape == (N_TRAIN, N_FEATURES) and np.all(np.isfinite(train_norm)):
            median_std = float(np.median(train_norm.std(axis=0)))
            if 0.1 < median_std < 10:
                scale = median_std
    except (NotAttempted, ValueError, TypeError):
        pass
    z = got / scale

    def same(reference):
        return np.allclose(z, reference, rtol=1e-3, atol=1e-2)

    if same(data.test_norm):
        return
    if np.all(np.abs(got.mean(axis=0)) < 1e-3):
        raise AssertionError(
            "Your `x_test_norm` was standardised with the test set's own mean and standard "
            "deviation: every one of its columns has mean exactly 0. That lets information from "
            "the test set leak into the preprocessing, and it feeds the model inputs on a "
            "different scale from the one it was trained on. Use the training statistics: "
            "x_test_norm = (x_test - train_mean) / train_std."
        )
    everything = np.concatenate([data.x_train, data.x_test])
    if same((data.x_test - everything.mean(axis=0)) / everything.std(axis=0)):
        raise AssertionError(
            "Your `x_test_norm` was standardised with the mean and standard deviation of the "
            "training and test sets together. That also leaks information from the test set. "
            "Compute the statistics on x_train only: x_test_norm = (x_test - train_mean) / train_std."
        )
    if np.allclose(got, data.x_test):
        raise AssertionError(
            "`x_test_norm` holds the raw test features. Standardise them with the training "
            "statistics: x_test_norm = (x_test - train_mean) / train_std."
        )
    worst = int(np.argmax(np.abs(z - data.test_norm).max(axis=0)))
    raise AssertionError(
        "`x_test_norm` is not (x_test - train_mean) / train_std, with the mean and standard "
        f"deviation of the training set (the largest difference is in feature {FEATURES[worst]}). "
        "Use the same `train_mean` and `train_std` for both sets."
    )


@pytest.mark.points(2)
def test_linear_model_is_linear_with_14_parameters(linear_model):
    """linear_model is one Dense unit on 13 inputs, linear, with 14 parameters."""
    check_single_linear_unit(
        linear_model,
        layer_count="`linear_model` has {count} layers with weights; a linear model has exactly one "
                    "Dense layer. Hidden layers belong in `mlp_model`.",
        layer_kind="The layer of `linear_model` is a {kind}; use keras.layers.Dense.",
        units="The Dense layer of `linear_model` has {units} units; one unit gives one price per town.",
        activation="The Dense layer of `linear_model` uses the {activation!r} activation; a linear "
                   "model needs no activation (the default), so that the output is w . x + b.",
    )
    check_input_shape(linear_model, (N_FEATURES,), message=(
        "`linear_model` was built for inputs of shape {shape}; each town has 13 features, so "
        "use keras.Input(shape=(13,))."
    ))
    check_parameter_count(linear_model, N_FEATURES + 1, message=(
        "`linear_model` has {params} parameters; a linear model on 13 features has 14: "
        "13 weights and a bias."
    ))


@pytest.mark.points(2)
def test_linear_model_test_mae(linear_model, linear_out, data, artifacts, feedback):
    """The linear model's test MAE is low enough."""
    mae = recorded_mae(linear_out, data, feedback, metric="linear_test_mae", label="linear_model")
    grade_by_threshold(
        mae, full=LINEAR_MAX_MAE, partial=LINEAR_PARTIAL_MAE, higher_is_better=False,
        message=lambda: (
            f"On the test set, standardised with the training statistics, `linear_model` is off by "
            f"{mae:.2f} k$ on average (MAE); the target is at most {LINEAR_MAX_MAE:.1f} k$. "
            + mae_hints(linear_model, linear_out, mae, data, artifacts)
        ),
    )


@pytest.mark.points(1)
def test_mlp_has_a_nonlinear_hidden_layer(mlp_model):
    """mlp_model has a hidden layer with a non-linear activation and one output unit."""
    layers = flat_layers(mlp_model)
    dense = [layer for layer in layers if type(layer).__name__ == "Dense"]
    assert len(dense) >= 2, (
        f"`mlp_model` has {len(dense)} Dense layer(s); an MLP needs at least one hidden Dense "
        "layer before the output layer."
    )
    nonlinear = (
        any(layer_activation(layer) not in (None, "linear") for layer in dense[:-1])
        or any(type(layer).__name__ in NONLINEAR_LAYERS for layer in layers)
        or any(type(layer).__name__ == "Activation"
               and layer_activation(layer) not in (None, "linear") for layer in layers)
    )
    assert nonlinear, (
        "The hidden layers of `mlp_model` have no activation. A stack of linear layers is "
        "still one linear map, so the MLP can do no better than `linear_model`. Give the "
        "hidden layers activation=\"relu\"."
    )
    assert dense[-1].units == 1, (
        f"The output layer of `mlp_model` has {dense[-1].units} units; one price per town needs Dense(1)."
    )
    check_input_shape(mlp_model, (N_FEATURES,), message=(
        "`mlp_model` was built for inputs of shape {shape}; use keras.Input(shape=(13,))."
    ))


@pytest.mark.points(3)
def test_mlp_test_mae_beats_linear(mlp_model, mlp_out, data, artifacts, feedback):
    """The MLP's test MAE is low and clearly below the linear model's."""
    mae = recorded_mae(mlp_out, data, feedback, metric="test_mae", label="mlp_model")
    linear_mae = None
    try:
        linear_mae = mean_absolute_error(
            predict_test_set(artifacts.model("linear_model"), "linear_model", data.test_norm),
            data.y_test,
        )
    except (NotAttempted, AssertionError):
        pass
    low_enough = mae <= MLP_MAX_MAE
    beats_linear = linear_mae is None or mae <= MLP_TO_LINEAR * linear_mae
    if low_enough and not beats_linear:
        partial_credit(
            0.5,
            f"`mlp_model` reaches a test MAE of {mae:.2f} k$, but that is not clearly better than "
            f"`linear_model` ({linear_mae:.2f} k$): it should be at most "
            f"{MLP_TO_LINEAR:.0%} of the linear model's error. Train the MLP longer.",
        )
    grade_by_threshold(
        mae, full=MLP_MAX_MAE, partial=MLP_PARTIAL_MAE, higher_is_better=False,
        message=lambda: (
            f"On the test set, standardised with the training statistics, `mlp_model` is off by "
            f"{mae:.2f} k$ on average (MAE); the target is at most {MLP_MAX_MAE:.1f} k$, which a "
            "linear model does not reach on this split. "
            + mae_hints(mlp_model, mlp_out, mae, data, artifacts)
        ),
    )


@pytest.mark.points(1)
def test_test_predictions_have_shape_102_by_1(artifacts, data, linear_model, mlp_model):
    """Both models give one price per test town, and the exported predictions are theirs."""
    own = student_array(artifacts, "x_test_norm", (N_TEST, N_FEATURES))
    for name, model, model_name in (
        ("linear_predictions", linear_model, "linear_model"),
        ("mlp_predictions", mlp_model, "mlp_model"),
    ):
        predict_test_set(model, model_name, data.test_norm)
        got = np.asarray(artifacts.array(name))
        if got.shape != (N_TEST, 1):
            hint = ""
            if got.shape[:1] == (N_TRAIN,):
                hint = " That is one per training town: predict on `x_test_norm`."
            elif got.shape == (N_TEST,):
                hint = " Keep the (102, 1) array that predict returns; use [:, 0] only when you compare it with y_test."
            raise AssertionError(
                f"`{name}` has shape {got.shape}; it should hold `{model_name}.predict(x_test_norm)`, "
                f"of shape ({N_TEST}, 1).{hint}"
            )
        expected = np.asarray(model.predict(own, verbose=0))
        if np.allclose(got, expected, rtol=1e-3, atol=1e-3):
            continue
        raw = np.asarray(model.predict(data.x_test, verbose=0))
        assert not np.allclose(got, raw, rtol=1e-3, atol=1e-3), (
            f"`{name}` was predicted from the raw `x_test`; the model was trained on normalised "
            "features, so predict on `x_test_norm`."
        )
        raise AssertionError(
            f"`{name}` is not what `{model_name}` predicts for `x_test_norm`. Compute it after "
            f"training, with {model_name}.predict(x_test_norm), and do not train the model further afterwards."
        )
