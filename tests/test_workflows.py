"""The GitHub Actions workflows call the command line as it really is: every
`autograder` command they run exists and takes the options they pass."""

import re
import shlex

import pytest
import yaml

from autograder import cli
from conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def autograder_commands(workflow):
    """(verb, options) of each `autograder ...` call in the workflow's steps."""
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    scripts = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    for line in "\n".join(scripts).splitlines():
        for match in re.finditer(r"\bautograder (\w[\w-]*)([^|;&]*)", line.split("#")[0]):
            words = shlex.split(match.group(2))
            yield match.group(1), [w.split("=")[0] for w in words if w.startswith("--")]


def subcommands():
    parser = cli._parser()
    (action,) = [a for a in parser._subparsers._group_actions]
    return action.choices


def test_there_is_one_workflow_for_instructors_and_one_for_students():
    assert [w.name for w in WORKFLOWS] == ["grade-submissions.yml", "student-self-check.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_every_command_a_workflow_runs_exists_with_its_options(workflow):
    commands = list(autograder_commands(workflow))
    assert commands, f"{workflow.name} runs no autograder command"
    known = subcommands()
    for verb, options in commands:
        assert verb in known, f"{workflow.name} runs `autograder {verb}`, which does not exist"
        accepted = {o for a in known[verb]._actions for o in a.option_strings}
        assert set(options) <= accepted, f"`autograder {verb}` has no {set(options) - accepted}"
