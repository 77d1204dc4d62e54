"""Where the fashion_mnist_regularisation thresholds come from: the reference
recipe trained over several seeds and measured as the hidden suite measures
it, with the suite's own functions.

Run ``i`` uses holdout seed ``i`` (so the private slice, and with it the
12,000 images the notebook trains on, change from run to run as they do
between courses) and ``keras.utils.set_random_seed(i)``. It trains, in this
process, the notebook's two networks on the first 12,000 served training
images with ``validation_split=0.2``: ``plain_model`` for 12 epochs, and
``regularised_model`` (L2 1e-4 on every Dense kernel, Dropout 0.3 after each
hidden layer) with early stopping (patience 4, best weights restored) for at
most 50. Printed per seed:

- test accuracy of the regularised model, its accuracy on the private slice
  and the z of the gap (``checks.accuracy_gap_z``);
- both gaps (test minus training cross-entropy) and their ratio;
- epochs run and the best epoch of the regularised model;
- how closely the model's recomputed validation loss matches the history at
  the epoch the suite finds (``match``, relative), how far the nearest other
  epoch's validation loss is (``next``), and how close the model's test loss
  comes to any epoch's validation loss (``test``): the margins of
  ``LOSS_RTOL``;
- history's training loss / the recomputed one, for both models
  (``HISTORY_LOSS_BAND``).

With ``--variants`` (first seeds only) it also trains the lecture's version
of the plain model, validated on the test set, and the regularised model
without ``restore_best_weights``, and prints what the suite finds for them.

    nice -n 10 python benchmarks/fashion_mnist_regularisation_thresholds.py --seeds 10

The recipe is that of
solutions/fashion_mnist_regularisation/fashion_mnist_regularisation.ipynb;
keep the two in step. Needs AUTOGRADER_DATA_DIR (or the Keras cache) to
hold Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from autograder.checks import accuracy_gap_z  # noqa: E402
from autograder.datasets import fashion_mnist, served  # noqa: E402
from suite_measures import load_suite, print_summaries  # noqa: E402

NAME = "fashion_mnist_regularisation"


RECIPE = {"l2": 1e-4, "dropout": 0.3}
"""The regularised network's L2 factor and Dropout rate (--l2, --dropout)."""


def network(regularised: bool):
    penalty = keras.regularizers.L2(RECIPE["l2"]) if regularised else None
    layers = [keras.Input(shape=(28, 28)), keras.layers.Flatten()]
    for units in (512, 512):
        layers.append(keras.layers.Dense(units, activation="relu", kernel_regularizer=penalty))
        if regularised:
            layers.append(keras.layers.Dropout(RECIPE["dropout"]))
    layers.append(keras.layers.Dense(10, activation="softmax", kernel_regularizer=penalty))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_plain(x, y, validation=None):
    model = network(False)
    how = {"validation_data": validation} if validation else {"validation_split": 0.2}
    history = model.fit(x, y, epochs=20, batch_size=128, verbose=0, **how)
    return model, history.history


def train_regularised(x, y, restore=True):
    model = network(True)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=restore)
    history = model.fit(x, y, validation_split=0.2, epochs=50, batch_size=128, verbose=0, callbacks=[stop])
    return model, history.history


def distances(suite, model, name, history, data):
    """(relative distance of the suite's match, of the nearest other epoch,
    of the closest epoch to the model's test loss)."""
    losses = np.asarray(history["val_loss"])
    val = suite.figures(model, name, data["validation"]).losses
    test = suite.figures(model, name, data["test"]).losses
    match = suite.where_validated(model, name, history, data)
    closest_test = min(float(np.min(np.abs(losses - t)) / t) for t in test)
    if match is None or match.source != "validation":
        return np.nan, np.nan, closest_test
    others = np.delete(losses, match.epoch)
    return (min(abs(losses[match.epoch] - v) / v for v in val),
            float(np.min(np.abs(others - losses[match.epoch])) / losses[match.epoch]) if len(others) else np.inf,
            closest_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--variants", type=int, default=0, help="also train the variants for this many seeds")
    parser.add_argument("--l2", type=float, default=RECIPE["l2"], help="L2 factor of the regularised model")
    parser.add_argument("--dropout", type=float, default=RECIPE["dropout"], help="its Dropout rate")
    args = parser.parse_args()
    RECIPE.update(l2=args.l2, dropout=args.dropout)
    print(f"recipe: L2 {args.l2}, Dropout {args.dropout}")
    suite = load_suite(NAME)
    (x_all, y_all), (x_test, y_test) = fashion_mnist.load_data()
    print(f"thresholds: accuracy >= {suite.TARGET_ACCURACY} (half {suite.PARTIAL_ACCURACY}), "
          f"gap ratio <= {suite.GAP_RATIO}, plain gap >= {suite.MIN_PLAIN_GAP}, "
          f"loss rtol {suite.LOSS_RTOL}, history band {suite.HISTORY_LOSS_BAND}")
    print(f"{'seed':>4} {'acc':>6} {'priv':>6} {'z':>5} {'plain':>6} {'p gap':>6} {'r gap':>6} {'ratio':>5} "
          f"{'ep':>3} {'best':>4} {'match':>8} {'next':>7} {'test':>7} {'p hist':>6} {'r hist':>6} "
          f"{'p s':>5} {'r s':>5}", flush=True)
    rows = []
    for seed in range(args.first, args.first + args.seeds):
        os.environ[served.HOLDOUT_SEED_ENV] = str(seed)
        suite._FIGURES.clear()
        suite._MATCHES.clear()
        data = suite.load_images()
        used = np.concatenate(suite.notebook_rows())
        x, y = x_all[used].astype("float32") / 255, y_all[used]
        keras.utils.set_random_seed(seed)
        started = time.perf_counter()
        plain, plain_history = train_plain(x, y)
        plain_s = time.perf_counter() - started
        keras.utils.set_random_seed(seed)
        started = time.perf_counter()
        regularised, reg_history = train_regularised(x, y)
        reg_s = time.perf_counter() - started

        test = suite.figures(regularised, "regularised_model", data["test"])
        private_x, private_y = served.private_slice("fashion_mnist", seed)
        private = float(np.mean(np.argmax(regularised.predict(private_x.astype("float32") / 255, verbose=0),
                                          axis=1) == private_y))
        z = accuracy_gap_z(test.accuracy, len(y_test), private, len(private_y))
        plain_test = suite.figures(plain, "plain_model", data["test"])
        gaps, ratios = {}, {}
        for name, model, history in (("plain", plain, plain_history), ("regularised", regularised, reg_history)):
            fit = suite.figures(model, f"{name}_model", data["fit"])
            tested = suite.figures(model, f"{name}_model", data["test"])
            gaps[name] = tested.crossentropy - fit.crossentropy
            match = suite.where_validated(model, f"{name}_model", history, data)
            epoch = match.epoch if match is not None else len(history["loss"]) - 1
            ratios[name] = history["loss"][epoch] / fit.loss
        match_d, next_d, test_d = distances(suite, regularised, "regularised_model", reg_history, data)
        p_match, p_next, p_test = distances(suite, plain, "plain_model", plain_history, data)
        epochs = len(reg_history["val_loss"])
        best = int(np.argmin(reg_history["val_loss"])) + 1
        row = [test.accuracy, private, z, plain_test.accuracy, gaps["plain"], gaps["regularised"],
               gaps["regularised"] / gaps["plain"], epochs, best, max(match_d, p_match),
               min(next_d, p_next), min(test_d, p_test), ratios["plain"], ratios["regularised"],
               plain_s, reg_s]
        rows.append(row)
        print(f"{seed:4d} {row[0]:6.4f} {row[1]:6.4f} {row[2]:5.2f} {row[3]:6.4f} {row[4]:6.3f} {row[5]:6.3f} "
              f"{row[6]:5.2f} {epochs:3d} {best:4d} {row[9]:8.1e} {row[10]:7.1e} {row[11]:7.1e} "
              f"{row[12]:6.3f} {row[13]:6.3f} {plain_s:5.1f} {reg_s:5.1f}", flush=True)

        if seed - args.first < args.variants:
            keras.utils.set_random_seed(seed)
            deck, deck_history = train_plain(x[:suite.N_FIT], y[:suite.N_FIT],
                                             validation=(x_test.astype("float32") / 255, y_test))
            found = suite.where_validated(deck, "deck_model", deck_history, data)
            deck_test = suite.figures(deck, "deck_model", data["test"]).losses
            print(f"     deck (validated on x_test): suite finds {found}, relative distances "
                  + ", ".join(f"{abs(deck_history['val_loss'][-1] - t) / t:.1e}" for t in deck_test), flush=True)
            keras.utils.set_random_seed(seed)
            kept, kept_history = train_regularised(x, y, restore=False)
            found = suite.where_validated(kept, "kept_model", kept_history, data)
            print(f"     no restore_best_weights: {len(kept_history['val_loss'])} epochs, best "
                  f"{int(np.argmin(kept_history['val_loss'])) + 1}, suite finds {found}", flush=True)

    print_summaries(["regularised test accuracy", "private-slice accuracy", "z",
                     "plain test accuracy", "plain gap", "regularised gap", "gap ratio", "epochs run",
                     "best epoch", "match distance", "next epoch distance", "test-loss distance",
                     "plain history ratio", "regularised history ratio", "plain training s",
                     "regularised training s"], rows)


if __name__ == "__main__":
    main()
