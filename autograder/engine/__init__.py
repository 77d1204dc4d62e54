"""The grading engine, one module per stage: prepare, execute, export,
evaluate, record; :mod:`autograder.engine.grade` runs them in order."""
