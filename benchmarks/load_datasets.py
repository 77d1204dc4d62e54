"""Time each dataset loader: the first call (which verifies checksums) and a second one.

Usage: ``AUTOGRADER_DATA_DIR=/path/to/datasets python benchmarks/load_datasets.py``

The run uses a fresh, temporary verification cache, so the first call always
hashes the files; the second call finds them already verified. Downloads are
disabled (``AUTOGRADER_OFFLINE=1``): a missing file is reported, not fetched.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder import datasets  # noqa: E402

NAMES = ["grading", "boston_housing", "mnist", "fashion_mnist", "cifar10"]


def timed(name):
    start = time.perf_counter()
    result = datasets.load(name)
    return time.perf_counter() - start, result


def describe(result):
    arrays = [a for part in result for a in (part if isinstance(part, tuple) else (part,))]
    return ", ".join(f"{a.dtype}{a.shape}" for a in arrays)


def main():
    if not os.environ.get("AUTOGRADER_DATA_DIR"):
        sys.exit("Set AUTOGRADER_DATA_DIR to the directory that holds the dataset files.")
    os.environ["AUTOGRADER_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        print(f"{'dataset':<16}{'first (s)':>10}{'second (s)':>12}  arrays")
        for name in NAMES:
            try:
                first, _ = timed(name)
                second, result = timed(name)
            except datasets.DatasetError as err:
                print(f"{name:<16}{'-':>10}{'-':>12}  {type(err).__name__}: {str(err).splitlines()[0]}")
                continue
            print(f"{name:<16}{first:>10.3f}{second:>12.3f}  {describe(result)}")


if __name__ == "__main__":
    main()
