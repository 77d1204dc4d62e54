"""Training time of the CIFAR-10 reference where the real dataset cannot go.

The 180 MB CIFAR-10 files do not fit on every machine a benchmark can reach
(an offline GPU machine fed through a 64 MiB channel, for one). This script
runs the reference notebook's own code cells in this process on stand-in
data: random ``uint8`` images and labels of exactly the real shapes
(50,000 and 10,000 images of 32 x 32 x 3). Accuracy means nothing here; the
time does, since training costs the same whatever the pixels hold. Prints the
seconds of every cell that took more than one, the training cell's seconds
and its epochs' mean after the first (the first compiles).

Usage: ``python benchmarks/cifar10_stand_in.py`` (the device is whatever the
Keras backend picks: the GPU where the backend has one).
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402

from autograder.course import load_assignment  # noqa: E402
from autograder.datasets import cifar10  # noqa: E402


def stand_in_data():
    """Random data shaped and typed as ``cifar10.load_data()`` returns it."""
    rng = np.random.default_rng(0)
    def part(n):
        return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                rng.integers(0, 10, (n, 1), dtype=np.uint8))
    return part(50_000), part(10_000)


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main():
    notebook = nbformat.read(load_assignment("cifar10_cnn").source_notebook, as_version=4)
    cifar10.load_data = stand_in_data  # the cells import the module, then call this
    epochs = EpochTimes()
    fit = keras.Model.fit

    def timed_fit(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[*(callbacks or []), epochs], **kwargs)

    keras.Model.fit = timed_fit
    print(f"keras backend: {keras.backend.backend()}")
    namespace = {}
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or "BEGIN HIDDEN TESTS" in cell.source:
            continue
        started = time.perf_counter()
        exec(compile(cell.source, f"cell {number}", "exec"), namespace)
        seconds = time.perf_counter() - started
        if seconds > 1:
            print(f"cell {number}: {seconds:.1f} s" + ("  (training)" if "model.fit" in cell.source else ""),
                  flush=True)
    if epochs.seconds:
        later = epochs.seconds[1:] or epochs.seconds
        print(f"epochs: {len(epochs.seconds)}, first {epochs.seconds[0]:.2f} s, "
              f"mean of the rest {np.mean(later):.2f} s ({50_000 * 0.9 / np.mean(later):,.0f} images/s)")


if __name__ == "__main__":
    main()
