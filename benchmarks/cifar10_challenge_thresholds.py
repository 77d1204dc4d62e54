"""Where the cifar10_challenge floor and bands come from: the reference recipe
trained over several seeds on what the kernel is served, measured as the
hidden suite measures it.

Run ``i`` serves the CIFAR-10 training images without the private slice of
holdout seed ``i`` (so the slice moves from run to run, as it does from one
course to the next), calls ``keras.utils.set_random_seed(i)`` and trains the
reference recipe of solutions/cifar10_challenge/cifar10_challenge.ipynb on
the served images. Prints, per seed, the test accuracy (test images divided
by 255), the accuracy on the private slice, the z statistic of the gap that
``checks.check_test_set_unseen`` tests, the points the suite's floor and
bands give, and the training seconds; then min / mean / max. With
``--variants`` each seed also trains a dense network within the parameter
budget (Flatten, Dense(64, relu), Dense(10, softmax); the same optimiser,
3 epochs): what a working model without convolutions reaches.

    nice -n 10 python benchmarks/cifar10_challenge_thresholds.py --seeds 10 --variants

Keep the recipe here and the notebook's in step.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from autograder.checks import accuracy_gap_z  # noqa: E402
from autograder.datasets import cifar10, served  # noqa: E402
from suite_measures import load_suite, print_summaries  # noqa: E402

EPOCHS, BATCH_SIZE, LEARNING_RATE, VALIDATION_SPLIT = 3, 128, 0.002, 0.05


def reference_model():
    def block(filters):
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.MaxPooling2D(),
                layers.BatchNormalization(), layers.Activation("relu")]

    return keras.Sequential([keras.Input(shape=(32, 32, 3))] + block(32) + block(64) + block(128)
                            + [layers.Flatten(), layers.Dropout(0.3), layers.Dense(10, activation="softmax")])


def dense_model():
    return keras.Sequential([keras.Input(shape=(32, 32, 3)), layers.Flatten(),
                             layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])


def train(model, x, y):
    steps = EPOCHS * int(np.ceil(len(x) * (1 - VALIDATION_SPLIT) / BATCH_SIZE))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, validation_split=VALIDATION_SPLIT, verbose=0)
    return model


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, batch_size=1024, verbose=0), axis=1) == y.ravel()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--variants", action="store_true", help="also train the dense network")
    args = parser.parse_args()
    suite = load_suite("cifar10_challenge")
    budget = suite.PARAMETER_BUDGET
    (x_full, y_full), (x_test, y_test) = cifar10.load_data()
    x_test = x_test.astype("float32") / 255
    print(f"floor {suite.FLOOR_ACCURACY}, bands {suite.BANDS}, budget {budget:,} parameters; "
          f"{EPOCHS} epochs, batch {BATCH_SIZE}")
    header = f"{'seed':>4} {'test':>7} {'private':>7} {'z':>6} {'points':>6} {'train s':>7}"
    if args.variants:
        header += f" {'dense':>7} {'dense pts':>9}"
    print(header, flush=True)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        held, keep = served.holdout_indices("cifar10", seed), served.served_rows("cifar10", seed)
        x, y = x_full[keep].astype("float32") / 255, y_full[keep]
        x_private = x_full[held].astype("float32") / 255
        keras.utils.set_random_seed(seed)
        started = time.perf_counter()
        model = train(reference_model(), x, y)
        seconds = time.perf_counter() - started
        test_acc, private_acc = accuracy(model, x_test, y_test), accuracy(model, x_private, y_full[held])
        z = accuracy_gap_z(test_acc, len(y_test), private_acc, len(held))
        points = suite.points_for(test_acc)
        row = [test_acc, private_acc, z, points, seconds]
        line = f"{seed:4d} {test_acc:7.4f} {private_acc:7.4f} {z:6.2f} {points:6g} {seconds:7.1f}"
        if args.variants:
            keras.utils.set_random_seed(seed)
            dense = train(dense_model(), x, y)
            dense_acc = accuracy(dense, x_test, y_test)
            row += [dense_acc, suite.points_for(dense_acc)]
            line += f" {dense_acc:7.4f} {suite.points_for(dense_acc):9g}"
        rows.append(row)
        print(line, flush=True)
        keras.backend.clear_session()
    labels = ["reference test accuracy", "reference private-slice accuracy", "gap z",
              "reference points (floor + bands)", "training seconds"]
    if args.variants:
        labels += ["dense network test accuracy", "dense network points"]
    print_summaries(labels, rows)


if __name__ == "__main__":
    main()
