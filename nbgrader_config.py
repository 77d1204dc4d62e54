"""This repository is an nbgrader course directory.

Instructors' source notebooks live in solutions/, and
`nbgrader generate_assignment <name>` writes the student release to
assignments/<name>/. Hidden test cells call autograder.nbgrader_bridge, which
runs the same hidden suites as `autograder grade`.
"""

import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "intro-deep-learning-keras"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# Training cells and hidden-suite cells take longer than nbgrader's 30 s default.
c.ExecutePreprocessor.timeout = 600
# A graded cell that writes to stderr scores 0 in nbgrader; TensorFlow's C++
# start-up messages must not count against students.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
