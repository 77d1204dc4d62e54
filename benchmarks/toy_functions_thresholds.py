"""Where the toy_functions thresholds come from: the reference recipe trained
over several seeds and measured on fresh points, as the hidden suite does.

Run ``i`` trains with ``keras.utils.set_random_seed(i)`` on the notebook's
10,000 points (its fixed data seed) and measures on the fresh points the
suite draws for holdout seed ``i`` (``fresh_points`` of the suite, so the
draw is the suite's own). Prints, per seed, the regression model's mean
squared error, the classifier's accuracy and the majority-class rate on those
points, then min / mean / max. With ``--variants`` each seed also trains:

- ``logits``: the reference classifier with a linear last layer, trained
  with ``BinaryCrossentropy(from_logits=True)`` (what the suite's accuracy
  check gives a classifier that lacks its sigmoid);
- ``deck``: the lecture's first recipe for both models (Dense 20 and 30,
  plain SGD with learning rate 0.01, batch 32, 10 epochs).

    nice -n 10 python benchmarks/toy_functions_thresholds.py --seeds 10 --variants

The recipe is that of solutions/toy_functions/toy_functions.ipynb; keep the
two in step.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from suite_measures import load_suite, print_summaries  # noqa: E402

DATA_SEED = 2026  # the notebook's
N_SAMPLES, N_IN = 10_000, 10


def training_data():
    """The notebook's points: the same generator and seed."""
    rng = np.random.default_rng(DATA_SEED)
    x_train = rng.random((N_SAMPLES, N_IN))
    y_train = np.sin(np.sum(np.square(x_train), axis=1))
    return x_train, y_train


def network(hidden, last_activation=None):
    return keras.Sequential(
        [keras.Input(shape=(N_IN,))]
        + [keras.layers.Dense(units, activation="relu") for units in hidden]
        + [keras.layers.Dense(1, activation=last_activation)]
    )


def train_reference(x_train, y_train):
    regression_model = network([32, 32])
    regression_model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003), loss="mse")
    regression_model.fit(x_train, y_train, epochs=30, batch_size=64, verbose=0)
    label_train = (y_train >= 0).astype("float32")
    classifier_model = network([32, 32], "sigmoid")
    classifier_model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003),
                             loss="binary_crossentropy", metrics=["accuracy"])
    classifier_model.fit(x_train, label_train, epochs=30, batch_size=64, verbose=0)
    return regression_model, classifier_model


def train_logits(x_train, y_train):
    model = network([32, 32])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x_train, (y_train >= 0).astype("float32"), epochs=30, batch_size=64, verbose=0)
    return model


def train_deck(x_train, y_train):
    regression_model = network([20, 30])
    regression_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    regression_model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0)
    classifier_model = network([20, 30], "sigmoid")
    classifier_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="binary_crossentropy")
    classifier_model.fit(x_train, (y_train >= 0).astype("float32"), epochs=10, batch_size=32, verbose=0)
    return regression_model, classifier_model


def measure(regression_model, classifier_model, x, y):
    mse = float(np.mean((regression_model.predict(x, verbose=0)[:, 0] - y) ** 2))
    accuracy = float(np.mean((classifier_model.predict(x, verbose=0)[:, 0] >= 0.5) == (y >= 0)))
    return mse, accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--variants", action="store_true", help="also train the logits and deck variants")
    args = parser.parse_args()
    suite = load_suite("toy_functions")
    x_train, y_train = training_data()
    rows = []
    print(f"thresholds: MSE <= {suite.MAX_MSE} (half <= {suite.PARTIAL_MSE}), accuracy >= "
          f"{suite.TARGET_ACCURACY} (half >= {suite.PARTIAL_ACCURACY}), majority + {suite.MAJORITY_MARGIN}")
    header = f"{'seed':>4} {'mse':>8} {'accuracy':>8} {'majority':>8} {'train s':>8}"
    if args.variants:
        header += f" {'logits acc':>10} {'deck mse':>8} {'deck acc':>8}"
    print(header, flush=True)
    for seed in range(args.seeds):
        x, y = suite.fresh_points(seed)
        majority = float(max(np.mean(y >= 0), np.mean(y < 0)))
        keras.utils.set_random_seed(seed)
        started = time.perf_counter()
        regression_model, classifier_model = train_reference(x_train, y_train)
        seconds = time.perf_counter() - started
        mse, accuracy = measure(regression_model, classifier_model, x, y)
        row = [mse, accuracy, majority, seconds]
        line = f"{seed:4d} {mse:8.5f} {accuracy:8.4f} {majority:8.4f} {seconds:8.1f}"
        if args.variants:
            keras.utils.set_random_seed(seed)
            logits = train_logits(x_train, y_train)
            logits_accuracy = float(np.mean((logits.predict(x, verbose=0)[:, 0] >= 0.5) == (y >= 0)))
            keras.utils.set_random_seed(seed)
            deck_mse, deck_accuracy = measure(*train_deck(x_train, y_train), x, y)
            row += [logits_accuracy, deck_mse, deck_accuracy]
            line += f" {logits_accuracy:10.4f} {deck_mse:8.5f} {deck_accuracy:8.4f}"
        rows.append(row)
        print(line, flush=True)
    labels = ["reference MSE", "reference accuracy", "majority-class rate",
              "training seconds (both models)"]
    if args.variants:
        labels += ["logits classifier accuracy", "deck recipe MSE", "deck recipe accuracy"]
    print_summaries(labels, rows)


if __name__ == "__main__":
    main()
