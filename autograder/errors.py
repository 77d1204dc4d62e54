"""The one base of the errors that stop a command before or instead of
grading (as opposed to a submission's faults, which are graded)."""


class StopGrading(Exception):
    """Grading could not run: the command prints the message, which names
    what is wrong and what to do, and exits with :attr:`exit_code`."""

    exit_code = 2
