"""Feedback for students and instructors, drawn from what grading measured.

- :mod:`autograder.feedback.report`: one self-contained HTML page per
  submission (checks and their messages, learning curves, a confusion matrix
  or a predictions-vs-truth plot).
- :mod:`autograder.feedback.summary`: the class summary of a batch (score
  histogram, pass rate per check with the most-missed concept first).

Both write files that open anywhere: CSS inline, figures embedded as PNG, no
script and nothing fetched from elsewhere. Everything that came from a
student (messages quoting their values, notes, names, the training history)
is escaped or validated before it reaches the page.
"""

from autograder.feedback.report import render_report, write_report
from autograder.feedback.summary import summarize, write_class_summary

__all__ = ["render_report", "write_report", "summarize", "write_class_summary"]
