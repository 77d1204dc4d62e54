"""boston_housing graded end to end: wrong-but-plausible answers, through
the real engine and a real kernel. The reference and the blank release are
graded in tests/test_every_assignment.py, as for every assignment."""


import pytest

from conftest import assert_only_these_fail, by_name, earned, failing, needs_data_of, planned_points

A = "boston_housing"
pytestmark = [pytest.mark.slow, needs_data_of(A)]

NORMALISE = """
train_mean = x_train.mean(axis=0)
train_std = x_train.std(axis=0)
x_train_norm = (x_train - train_mean) / train_std
x_test_norm = (x_test - {test_mean}) / {test_std}
"""
LINEAR = "keras.utils.set_random_seed(1)\nlinear_model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(1)])"
TRAIN_LINEAR = (
    "linear_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss='mse', metrics=['mae'])\n"
    "linear_history = linear_model.fit(x_train_norm, y_train, epochs={epochs}, batch_size=32, verbose=0)"
)
EVALUATE_LINEAR = "linear_predictions = linear_model.predict(x_test_norm, verbose=0)"
MLP = """
keras.utils.set_random_seed(2)
mlp_model = keras.Sequential([
    keras.Input(shape=(13,)),
    keras.layers.Dense(64{activation}),
    keras.layers.Dense(64{activation}),
    keras.layers.Dense(1),
])
mlp_model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003), loss="mse", metrics=["mae"])
mlp_history = mlp_model.fit(x_train_norm, y_train, epochs={epochs}, batch_size=32, verbose=0)
mlp_predictions = mlp_model.predict(x_test_norm, verbose=0)
"""
RELU = ', activation="relu"'


def answers(*, test_mean="train_mean", test_std="train_std", linear_epochs=40,
            mlp_epochs=80, activation=RELU):
    return {
        "normalise": NORMALISE.format(test_mean=test_mean, test_std=test_std),
        "build_linear": LINEAR,
        "train_linear": TRAIN_LINEAR.format(epochs=linear_epochs),
        "evaluate_linear": EVALUATE_LINEAR,
        "build_train_mlp": MLP.format(activation=activation, epochs=mlp_epochs),
    }



def test_blank_release_says_which_variables_are_missing(blank_release):
    checks = by_name(blank_release(A))
    assert "does not define `x_train_norm`" in checks["test_training_features_are_standardised"].output
    assert "does not define `mlp_model`" in checks["test_mlp_test_mae_beats_linear"].output


def test_test_set_normalised_with_its_own_statistics_is_caught_as_a_leak(graded):
    """Fully trained, so only the leak check fails: the suite measures MAE on
    test features it standardised itself with the training statistics."""
    result = graded(A, "leak", answers(test_mean="x_test.mean(axis=0)", test_std="x_test.std(axis=0)"))
    assert failing(result) == {"test_test_features_use_training_statistics"}
    assert result.score == earned(A, *set(planned_points(A)) - failing(result)) == 10
    message = by_name(result)["test_test_features_use_training_statistics"].output
    assert "test set's own mean and standard deviation" in message
    assert "leak" in message
    assert "(x_test - train_mean) / train_std" in message


def test_two_std_scaling_and_a_hidden_layer_in_the_linear_model(graded):
    """Older material divides by 2 * std: the training check says so, while the
    leak check still credits using the training statistics. A hidden layer in
    linear_model breaks the 14-parameter check. The linear model stays untrained
    and the MLP gets one epoch, so both errors stay far above any threshold."""
    cells = answers(test_mean="train_mean", test_std="(2 * train_std)", linear_epochs=0, mlp_epochs=1)
    cells["normalise"] = cells["normalise"].replace(
        "x_train_norm = (x_train - train_mean) / train_std",
        "x_train_norm = (x_train - train_mean) / (2 * train_std)",
    )
    cells["build_linear"] = (
        "linear_model = keras.Sequential([keras.Input(shape=(13,)), "
        "keras.layers.Dense(8, activation='relu'), keras.layers.Dense(1)])"
    )
    result = graded(A, "two_std", cells)
    checks = assert_only_these_fail(result, A, {
        "test_training_features_are_standardised": ["divided by 2 * std"],
        "test_linear_model_is_linear_with_14_parameters": ["2 layers with weights"],
        "test_linear_model_test_mae": [],
        "test_mlp_test_mae_beats_linear": [],
    })
    assert result.score == 4
    assert all(checks[n].score == 0 for n in failing(result))


def test_mlp_without_activations_and_flattened_predictions(graded):
    cells = answers(linear_epochs=0, mlp_epochs=1, activation="")
    cells["evaluate_linear"] = EVALUATE_LINEAR + "[:, 0]"
    result = graded(A, "linear_mlp", cells)
    checks = assert_only_these_fail(result, A, {
        "test_linear_model_test_mae": [],
        "test_mlp_has_a_nonlinear_hidden_layer": ['activation="relu"'],
        "test_mlp_test_mae_beats_linear": [],
        "test_test_predictions_have_shape_102_by_1": ["`linear_predictions` has shape (102,)"],
    })
    assert result.score == 5
    linear_mae = checks["test_linear_model_test_mae"]
    assert linear_mae.score == 0 and "Train for more epochs" in linear_mae.output
