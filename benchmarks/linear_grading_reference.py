"""Measure the linear_grading reference solution over several seeds.

Prints, per seed, the figures the hidden suite checks (training MSE, rounded
accuracy, weight signs) and the training time; docs/thresholds.md records
the thresholds chosen from them. Usage:
``python benchmarks/linear_grading_reference.py [SEEDS...]``.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from autograder.datasets import grading  # noqa: E402


def train(seed):
    keras.utils.set_random_seed(seed)
    x, y = grading.load_data()
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.003), loss="mse")
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, epochs=60, batch_size=16, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    predictions = model.predict(x, verbose=0)
    mse = float(np.mean((predictions - y) ** 2))
    accuracy = float(np.mean(np.round(predictions) == y))
    kernel = model.get_weights()[0].ravel()
    return mse, accuracy, kernel, wall, cpu


def main(seeds):
    print(f"{'seed':>4} {'mse':>7} {'accuracy':>8} {'weights':>24} {'wall s':>7} {'cpu s':>7}")
    for seed in seeds:
        mse, accuracy, kernel, wall, cpu = train(seed)
        print(f"{seed:>4} {mse:7.4f} {accuracy:8.4f} {np.array2string(kernel, precision=3):>24} "
              f"{wall:7.1f} {cpu:7.1f}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1, 2, 3, 4])
