"""Generate ``datasets/grading.npz``, the data of the ``linear_grading`` exercise.

Instructors only: students must not see this rule, or the exercise becomes
reading the answer off a page.

The file holds two arrays:

- ``x``: float32, shape (2000, 3). Points from three parts of a course:
  exercises (0-10), project (0-10) and exam (0-20), whole numbers.
- ``y``: float32, shape (2000, 1). The final grade, a whole number 0-5.

The rule. Each student has an ability ``a ~ Beta(2.5, 2)``. A part's points are
``max * (0.65 a + 0.35 u) + e``, rounded and clipped to ``[0, max]``, with
``u ~ U(0, 1)`` independent per part and ``e ~ N(0, 0.8)``. The grade is the
weighted share of points ``s = 0.3 ex/10 + 0.2 proj/10 + 0.5 exam/20``, mapped
to ``round(7.5 s - 1.6 + N(0, 0.3))`` and clipped to 0-5.

A linear model can learn this well but not perfectly: the rounding, the
clipping at 0 and 5 and the noise cap the rounded-grade accuracy of the best
least-squares fit near 0.77. Every learned weight should be positive (more
points never lower a grade), and the exam carries the most weight per part.

Legacy ``RandomState`` is used on purpose: NumPy freezes its streams, so the
same seed gives the same bytes on every NumPy version.

Usage: ``python datasets/tools/make_grading.py [OUTPUT]``.
"""

import sys
from pathlib import Path

import numpy as np

SEED = 2019
NUM_STUDENTS = 2000
MAX_POINTS = np.array([10.0, 10.0, 20.0])
PART_WEIGHTS = np.array([0.3, 0.2, 0.5])
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "grading.npz"


def make_grading(seed=SEED, num_students=NUM_STUDENTS):
    """Return ``(x, y)`` following the rule in the module docstring."""
    rng = np.random.RandomState(seed)
    ability = rng.beta(2.5, 2.0, num_students)
    share = 0.65 * ability[:, None] + 0.35 * rng.random_sample((num_students, 3))
    noise = rng.normal(0.0, 0.8, (num_students, 3))
    x = np.clip(np.round(MAX_POINTS * share + noise), 0.0, MAX_POINTS)
    weighted_share = (x / MAX_POINTS) @ PART_WEIGHTS
    grade = np.round(7.5 * weighted_share - 1.6 + rng.normal(0.0, 0.3, num_students))
    y = np.clip(grade, 0.0, 5.0)[:, None]
    return x.astype("float32"), y.astype("float32")


def main(argv):
    output = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    x, y = make_grading()
    # Fixed member order and no compression metadata that varies: np.savez
    # writes zip entries with a fixed timestamp, so the bytes are reproducible.
    np.savez(output, x=x, y=y)
    print(f"wrote {output}: x {x.shape} {x.dtype}, y {y.shape} {y.dtype}")


if __name__ == "__main__":
    main(sys.argv)
