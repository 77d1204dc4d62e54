"""The GitHub Actions workflows call the command line as it really is: every
`autograder` command they run exists and takes the options they pass."""

import re
import shlex
import subprocess

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


GRADE = REPO / ".github" / "workflows" / "grade-submissions.yml"


def test_the_instructors_workflow_grades_shards_side_by_side_then_merges_them():
    workflow = yaml.safe_load(GRADE.read_text())
    jobs = workflow["jobs"]
    assert "shards" in workflow[True]["workflow_dispatch"]["inputs"]  # YAML reads `on:` as True
    grade = jobs["grade"]
    assert grade["needs"] == "plan"
    assert grade["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    assert grade["env"]["SHARD"] == "${{ matrix.shard }}/${{ inputs.shards }}"
    grading = [s["run"] for s in grade["steps"] if "autograder grade" in s.get("run", "")]
    assert len(grading) == 1 and '--shard "$SHARD" --output-dir "$OUT"' in grading[0]
    (upload,) = [s for s in grade["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["with"]["name"] == "shard-${{ matrix.shard }}" and grade["env"]["OUT"] == "shard-${{ matrix.shard }}"

    merge = jobs["merge"]
    assert merge["needs"] == "grade"
    (download,) = [s for s in merge["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
    assert download["with"] == {"pattern": "shard-*", "path": "shards"}
    scripts = [s["run"] for s in merge["steps"] if "run" in s]
    merging = next(i for i, s in enumerate(scripts) if s.startswith("autograder merge --from shards/*"))
    exporting = next(i for i, s in enumerate(scripts) if s.startswith('autograder export --from "$OUT"'))
    assert merging < exporting


@pytest.mark.parametrize("shards, listed", [
    ("1", "[1]"), ("3", "[1,2,3]"), ("20", f"[{','.join(map(str, range(1, 21)))}]"),
    ("0", None), ("21", None), ("two", None), ("1 2", None),
])
def test_the_plan_job_turns_the_shards_input_into_the_matrix(shards, listed, tmp_path):
    (step,) = yaml.safe_load(GRADE.read_text())["jobs"]["plan"]["steps"]
    output = tmp_path / "github_output"
    output.touch()
    ran = subprocess.run(["bash", "-e", "-c", step["run"]], capture_output=True, text=True,
                         env={"SHARDS": shards, "GITHUB_OUTPUT": str(output), "PATH": "/usr/bin:/bin"})
    if listed is None:
        assert ran.returncode != 0 and "whole number from 1 to 20" in ran.stdout
    else:
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert output.read_text() == f"list={listed}\n"
