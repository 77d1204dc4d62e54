"""Auto-graded Keras exercises: dataset loaders, a grading engine and hidden suites."""

__version__ = "0.1.0"
