"""Records: a graded class written where grades go next.

One module per format, each a pure ``to_xxx(...)`` that builds the data or
text and a thin ``write_xxx(path, ...)`` that writes it atomically:

- :mod:`~autograder.records.gradebook_csv`: a CSV gradebook, one column per check;
- :mod:`~autograder.records.gradescope`: Gradescope's ``results.json``, and
  the program its ``run_autograder`` runs; :mod:`~autograder.records.gradescope_bundle`
  builds the autograder zip;
- :mod:`~autograder.records.junit`: JUnit XML for CI systems;
- :mod:`~autograder.records.nbgrader_gradebook`: scores into nbgrader's gradebook.

:func:`load_results` reads a batch's output folder back;
:mod:`~autograder.records.commands` adds ``autograder export`` and
``autograder gradescope-bundle`` to the command line.
"""

from autograder.records.common import RecordsError, RecordsWarning, check_order, load_results

__all__ = ["RecordsError", "RecordsWarning", "check_order", "load_results"]
