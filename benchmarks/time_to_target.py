"""Time-to-target of every reference solution, graded by the real engine.

For each assignment the reference notebook is graded with its work directory
kept; the exported model is then measured here on the test data the kit loads,
the same way the hidden suite measures it. Prints: assignment, target, reached
value, seconds of notebook execution (which is mostly training), total grading
seconds, the score, and the device the kernel trained on. Runs on whatever
backend Keras uses; where ``nvidia-smi`` lists a GPU the kernel is allotted the
first one, as ``autograder grade --gpus auto`` would. Usage:
``python benchmarks/time_to_target.py [ASSIGNMENT ...]``.
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from autograder.course import known_assignments, load_assignment  # noqa: E402
from autograder.datasets import boston_housing, cifar10, fashion_mnist, grading, mnist  # noqa: E402
from autograder.engine import gpu  # noqa: E402
from autograder.engine.grade import grade_submission  # noqa: E402


def _accuracy(model, x, y):
    x = x.reshape((len(x), *model.inputs[0].shape[1:]))
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y.ravel()))


def linear_grading(artifacts):
    x, y = grading.load_data()
    model = keras.saving.load_model(artifacts / "model.keras", safe_mode=True)
    return "rounded accuracy >= 0.70", float(np.mean(np.round(model.predict(x, verbose=0)) == y))


def boston(artifacts):
    (x_train, _), (x_test, y_test) = boston_housing.load_data()
    x_test = (x_test - x_train.mean(axis=0)) / x_train.std(axis=0)
    model = keras.saving.load_model(artifacts / "mlp_model.keras", safe_mode=True)
    mae = float(np.mean(np.abs(model.predict(x_test, verbose=0)[:, 0] - y_test)))
    return "MLP test MAE <= 3.0", mae


def mnist_classifier(target):
    def measure(artifacts):
        _, (x_test, y_test) = mnist.load_data()
        model = keras.saving.load_model(artifacts / "model.keras", safe_mode=True)
        return f"test accuracy >= {target}", _accuracy(model, x_test / 255.0, y_test)
    return measure


def cifar(artifacts):
    _, (x_test, y_test) = cifar10.load_data()
    model = keras.saving.load_model(artifacts / "model.keras", safe_mode=True)
    return "test accuracy >= 0.70", _accuracy(model, x_test / 255.0, y_test)


def toy_functions(artifacts):
    # Fresh points as the hidden suite draws them, from a fixed holdout seed.
    x = np.random.default_rng([0, 0x70F_F0C5]).random((20_000, 10)).astype("float32")
    y = np.sin(np.sum(np.square(x.astype("float64")), axis=1))
    model = keras.saving.load_model(artifacts / "classifier_model.keras", safe_mode=True)
    return "fresh accuracy >= 0.85", float(np.mean((model.predict(x, verbose=0)[:, 0] >= 0.5) == (y >= 0)))


def fashion_mnist_regularisation(artifacts):
    _, (x_test, y_test) = fashion_mnist.load_data()
    model = keras.saving.load_model(artifacts / "regularised_model.keras", safe_mode=True)
    return "test accuracy >= 0.82", _accuracy(model, x_test / 255.0, y_test)


MEASURES = {
    "linear_grading": linear_grading,
    "boston_housing": boston,
    "mnist_mlp": mnist_classifier(0.975),
    "mnist_cnn": mnist_classifier(0.985),
    "cifar10_cnn": cifar,
    "cifar10_challenge": cifar,  # the top band, 0.70, gives full marks
    "toy_functions": toy_functions,
    "fashion_mnist_regularisation": fashion_mnist_regularisation,
}


def main(names):
    print(f"keras backend: {keras.backend.backend()}")
    print(f"{'assignment':<15} {'target':<26} {'reached':>8} {'execute s':>10} {'total s':>8} "
          f"{'score':>7}  device")
    gpus = gpu.detect_gpus()[:1]
    for name in names:
        assignment = load_assignment(name)
        allotted = gpus[0] if gpus else None
        capacity = gpu.capacities(gpus, per_gpu=None, limits=assignment.limits)
        share = gpu.memory_share(capacity[allotted.index]) if allotted else 1.0
        with tempfile.TemporaryDirectory() as workdir:
            result = grade_submission(assignment.source_notebook, assignment, workdir=Path(workdir),
                                      allotted=allotted, gpu_memory_fraction=share)
            target, reached = MEASURES[name](Path(workdir) / "artifacts")
        score = f"{result.score:g}/{result.max_score:g}"
        print(f"{name:<15} {target:<26} {reached:8.4f} {result.timings.get('execute', float('nan')):10.1f} "
              f"{result.execution_time:8.1f} {score:>7}  {result.device}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or [n for n in MEASURES if n in known_assignments()])
