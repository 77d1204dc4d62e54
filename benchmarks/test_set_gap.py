"""How far apart test accuracy and private-slice accuracy fall for honest
models, and for models fitted on the test set.

For each run ``i`` the grader's private slice is the one of holdout seed
``i`` (so the slice varies too, as it does between courses) and the
reference recipe of the assignment trains with ``keras.utils.set_random_seed(i)``
on what the kernel is served: the training rows without that slice. Each run
prints the test accuracy, the private-slice accuracy, their gap and its z
statistic (``checks.accuracy_gap_z``), which the suites compare with
``checks.TEST_DATA_SEEN_Z``. Two cheaters follow, trained by the same recipe
on the test set alone and on the served training rows plus the test set.

    nice -n 10 python benchmarks/test_set_gap.py --assignment mnist_mlp --seeds 30
    nice -n 10 python benchmarks/test_set_gap.py --assignment cifar10_cnn --seeds 3 --epochs 3

Needs the datasets (``AUTOGRADER_DATA_DIR``). Recipes are those of the
reference solutions in ``solutions/``; ``--epochs`` shortens the CNNs' runs.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from autograder.checks import TEST_DATA_SEEN_Z, accuracy_gap_z  # noqa: E402
from autograder.datasets import served  # noqa: E402
from autograder.datasets import LOADERS  # noqa: E402

DATASET = {"mnist_mlp": "mnist", "mnist_cnn": "mnist", "cifar10_cnn": "cifar10"}
EPOCHS = {"mnist_mlp": 10, "mnist_cnn": 5, "cifar10_cnn": 5}


def prepare(assignment, x):
    """Images as the reference notebook feeds them to its model."""
    x = x.astype("float32") / 255
    return x.reshape(-1, 28, 28, 1) if assignment == "mnist_cnn" else x


def build(assignment):
    layers = keras.layers
    if assignment == "mnist_mlp":
        return keras.Sequential([
            keras.Input(shape=(28, 28)), layers.Flatten(),
            layers.Dense(256, activation="relu"), layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ])
    if assignment == "mnist_cnn":
        return keras.Sequential([
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, use_bias=False), layers.MaxPooling2D(),
            layers.BatchNormalization(), layers.Activation("relu"),
            layers.Conv2D(64, 3, use_bias=False), layers.MaxPooling2D(),
            layers.BatchNormalization(), layers.Activation("relu"),
            layers.Flatten(), layers.Dropout(0.3),
            layers.Dense(64, activation="relu"), layers.Dropout(0.3),
            layers.Dense(10, activation="softmax"),
        ])
    blocks = []
    for filters in (32, 64, 128):
        blocks += [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.MaxPooling2D(),
                   layers.BatchNormalization(), layers.Activation("relu")]
    return keras.Sequential([keras.Input(shape=(32, 32, 3)), *blocks, layers.Flatten(),
                             layers.Dropout(0.3), layers.Dense(10, activation="softmax")])


def train(assignment, x, y, epochs):
    """The reference notebook's training, on whatever rows it is given
    (``x`` as the loader returns it)."""
    model = build(assignment)
    x = prepare(assignment, x)
    y = y.reshape(len(y))
    if assignment == "mnist_mlp":
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x[:-5000], y[:-5000], validation_data=(x[-5000:], y[-5000:]),
                  epochs=epochs, batch_size=128, verbose=0)
        return model
    if assignment == "mnist_cnn":
        fit_rows = int(np.ceil(0.9 * len(x)))
        kwargs = {"validation_split": 0.1}
    else:  # cifar10_cnn: a random 5,000 for validation, the rest to train on
        indices = np.random.default_rng(0).permutation(len(x))
        val, fit = indices[:5000], indices[5000:]
        kwargs = {"validation_data": (x[val], y[val])}
        x, y = x[fit], y[fit]
        fit_rows = len(x)
    updates = epochs * int(np.ceil(fit_rows / 128))
    schedule = keras.optimizers.schedules.CosineDecay(0.002, decay_steps=updates)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=0, **kwargs)
    return model


def accuracy(assignment, model, x, y):
    predicted = np.argmax(model.predict(prepare(assignment, x), batch_size=1024, verbose=0), axis=1)
    return float(np.mean(predicted == y.reshape(len(y))))


def measure(assignment, model, test, private):
    test_acc = accuracy(assignment, model, *test)
    private_acc = accuracy(assignment, model, *private)
    z = accuracy_gap_z(test_acc, len(test[0]), private_acc, len(private[0]))
    return test_acc, private_acc, z


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", choices=sorted(DATASET), default="mnist_mlp")
    parser.add_argument("--seeds", type=int, default=30, help="honest runs (default 30)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="override the reference's number of epochs")
    parser.add_argument("--no-cheaters", action="store_true", help="honest runs only")
    args = parser.parse_args()
    assignment, dataset = args.assignment, DATASET[args.assignment]
    epochs = args.epochs or EPOCHS[assignment]
    (x_train, y_train), test = LOADERS[dataset].load_data()
    print(f"{assignment}: {epochs} epochs, {served.HELD_OUT[dataset]:,} rows held out of "
          f"{len(x_train):,}; flagged when z > {TEST_DATA_SEEN_Z}", flush=True)
    print(f"{'run':>10} {'test acc':>9} {'private':>9} {'gap':>8} {'z':>6} {'seconds':>8}", flush=True)

    honest = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        held, keep = served.holdout_indices(dataset, seed), served.served_rows(dataset, seed)
        private = (x_train[held], y_train[held])
        started = time.perf_counter()
        keras.utils.set_random_seed(seed)
        model = train(assignment, x_train[keep], y_train[keep], epochs)
        test_acc, private_acc, z = measure(assignment, model, test, private)
        honest.append((test_acc, private_acc, z))
        print(f"{'seed ' + str(seed):>10} {test_acc:9.4f} {private_acc:9.4f} {test_acc - private_acc:+8.4f} "
              f"{z:6.2f} {time.perf_counter() - started:8.1f}", flush=True)
        keras.backend.clear_session()

    cheats = []
    if not args.no_cheaters:
        seed = args.first_seed
        held, keep = served.holdout_indices(dataset, seed), served.served_rows(dataset, seed)
        private = (x_train[held], y_train[held])
        x_test, y_test = test
        for name, x, y in [
            ("test only", x_test, y_test),
            ("train+test", np.concatenate([x_train[keep], x_test]), np.concatenate([y_train[keep], y_test])),
        ]:
            started = time.perf_counter()
            keras.utils.set_random_seed(seed)
            order = np.random.default_rng(seed).permutation(len(x))  # test rows not all last
            model = train(assignment, x[order], y[order], epochs)
            test_acc, private_acc, z = measure(assignment, model, test, private)
            cheats.append((name, z))
            print(f"{name:>10} {test_acc:9.4f} {private_acc:9.4f} {test_acc - private_acc:+8.4f} "
                  f"{z:6.2f} {time.perf_counter() - started:8.1f}", flush=True)
            keras.backend.clear_session()

    if honest:
        tests, privates, zs = map(np.array, zip(*honest))
        gaps = tests - privates
        print(f"honest runs: {len(honest)}; test accuracy {tests.min():.4f}-{tests.max():.4f}, "
              f"private {privates.min():.4f}-{privates.max():.4f}")
        print(f"gap: mean {gaps.mean():+.4f}, sd {gaps.std(ddof=1) if len(gaps) > 1 else 0:.4f}, "
              f"max {gaps.max():+.4f}; z: mean {zs.mean():+.2f}, max {zs.max():.2f}")
        print(f"threshold z > {TEST_DATA_SEEN_Z}: margin {TEST_DATA_SEEN_Z - zs.max():.2f} above the "
              f"largest honest z; honest runs flagged: {int(np.sum(zs > TEST_DATA_SEEN_Z))}")
    for name, z in cheats:
        print(f"cheater {name}: z {z:.2f}, {'flagged' if z > TEST_DATA_SEEN_Z else 'NOT flagged'}")


if __name__ == "__main__":
    main()
