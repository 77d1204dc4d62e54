"""``autograder doctor`` on this machine and on machines that lack something:
no data (offline, an empty home), no bubblewrap, Ubuntu's AppArmor rule;
and the preflight the grader runs before grading one assignment."""

import argparse
import contextlib
import io
import json
import os
import stat

import pytest
import yaml

from autograder import doctor
from autograder.course import known_assignments, load_assignment
from autograder.engine import execute, gpu, sandbox
from autograder.records.gradescope_bundle import setup_script
from conftest import REPO
from test_workflows import autograder_commands

NEEDED_DATA = tuple(sorted({d for name in known_assignments() for d in load_assignment(name).datasets} - {"grading"}))
"""The datasets the assignments load that are not part of the kit (grading.npz is)."""


def doctor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder")
    doctor.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def run_doctor(*argv: str) -> tuple[int, str]:
    args = doctor_parser().parse_args(["doctor", *argv])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = args.run(args)
    return code, out.getvalue()


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No dataset anywhere but the kit's own folder: no data directory, an
    empty home (no ~/.keras), nothing downloaded."""
    monkeypatch.delenv("AUTOGRADER_DATA_DIR", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("AUTOGRADER_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def no_bwrap(tmp_path, monkeypatch):
    """A PATH without bubblewrap (the answer of the cached probe is forgotten before and after)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    sandbox.bwrap_problem.cache_clear()
    yield
    monkeypatch.undo()
    sandbox.bwrap_problem.cache_clear()


# ------------------------------------------------------------------ this machine


@pytest.fixture(scope="module")
def this_machine():
    """The whole doctor, as JSON, run once."""
    code, out = run_doctor("--json")
    return code, json.loads(out)


@pytest.mark.datasets(*NEEDED_DATA)
def test_this_machine_can_grade_and_warns_only_about_what_it_lacks(this_machine):
    code, report = this_machine
    findings = {f["name"]: f for f in report["findings"]}
    assert code == 0 and report["can_grade"] is True
    assert list(findings)[:6] == ["python", "kit", "keras", "gpu", "sandbox", "kernel"]
    assert list(findings)[-2:] == ["memory", "disk"]
    assert {n for n in findings if n.startswith("dataset ")} == {f"dataset {d}" for d in (*NEEDED_DATA, "grading")}
    lacking = set()
    if not doctor.nvidia_gpus():
        lacking.add("gpu")
        assert findings["gpu"]["detail"].startswith("no GPU") and findings["gpu"]["fix"]
    if sandbox.bwrap_problem():
        lacking.add("sandbox")
    for name, finding in findings.items():
        assert finding["status"] == ("WARN" if name in lacking else "OK"), finding
    assert "Keras 3." in findings["keras"]["detail"]
    where = "without a sandbox" if "sandbox" in lacking else "inside bubblewrap"
    assert where in findings["kernel"]["detail"]
    assert "sha256 verified" in findings["dataset mnist"]["detail"]


def test_json_lists_every_finding_with_its_four_fields(this_machine):
    _, report = this_machine
    assert set(report) == {"can_grade", "findings"}
    for finding in report["findings"]:
        assert set(finding) == {"name", "status", "detail", "fix"}
        assert finding["status"] in ("OK", "WARN", "FAIL") and finding["detail"]
        assert finding["status"] == "OK" or finding["fix"], f"{finding['name']} says no fix"


def test_table_has_a_line_per_finding_a_fix_under_each_warning_and_a_verdict(monkeypatch):
    findings = [doctor.Finding("python", "OK", "Python 3.11"),
                doctor.Finding("gpu", "WARN", "no GPU", "nothing to do"),
                doctor.Finding("disk", "FAIL", "0.1 GiB free", "free space")]
    monkeypatch.setattr(doctor, "CHECKS", tuple((lambda f: lambda ctx: f)(f) for f in findings))
    code, out = run_doctor()
    assert code == 1
    assert out.splitlines() == [
        "OK    python: Python 3.11",
        "WARN  gpu: no GPU", "      fix: nothing to do",
        "FAIL  disk: 0.1 GiB free", "      fix: free space",
        "This machine cannot grade yet: 1 FAIL(s) above, each with its fix.",
    ]


# ------------------------------------------------------------------ no data


def test_without_data_offline_each_missing_dataset_is_a_warning_with_where_and_how(no_data):
    findings = {f.name: f for f in doctor.check_datasets(doctor.Context.build())}
    assert findings["dataset grading"].status == "OK"  # it comes with the kit
    for name in NEEDED_DATA:
        finding = findings[f"dataset {name}"]
        assert finding.status == "WARN", finding
        assert str(no_data / ".keras" / "datasets") in finding.detail
        assert "AUTOGRADER_OFFLINE is set" in finding.detail
        assert "AUTOGRADER_DATA_DIR" in finding.fix and "unset AUTOGRADER_OFFLINE" in finding.fix
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in findings["dataset cifar10"].fix


def test_one_assignment_whose_data_cannot_be_had_cannot_be_graded(no_data, monkeypatch):
    monkeypatch.setattr(doctor, "CHECKS", (doctor.check_datasets,))
    code, out = run_doctor("--assignment", "mnist_mlp", "--json")
    report = json.loads(out)
    assert code == 1 and report["can_grade"] is False
    assert [(f["name"], f["status"]) for f in report["findings"]] == [("dataset mnist", "FAIL")]
    assert run_doctor("--assignment", "linear_grading")[0] == 0


def test_online_the_doctor_says_how_to_download_but_downloads_nothing(no_data, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_OFFLINE")
    finding = doctor.check_dataset("boston_housing", required=True, download=False)
    assert finding.status == "WARN" and "not downloaded yet" in finding.detail
    assert "boston_housing.load_data()" in finding.fix
    assert list(no_data.iterdir()) == [] and "AUTOGRADER_OFFLINE" not in os.environ


def test_a_corrupt_copy_fails_with_how_to_replace_it(tmp_path, no_data, monkeypatch):
    (tmp_path / "data" / "boston_housing").mkdir(parents=True)
    (tmp_path / "data" / "boston_housing" / "housing.data").write_text("0 1 2\n")
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path / "data"))
    finding = doctor.check_dataset("boston_housing")
    assert finding.status == "FAIL" and "housing.data is corrupt" in finding.detail
    assert finding.fix.startswith("Delete the file")


# ------------------------------------------------------------------ a kernel on a GPU


FAKE_GPU = gpu.Gpu(index=0, name="NVIDIA H200", memory_mib=143771, uuid="GPU-0000")


def test_a_kernel_allotted_a_gpu_it_does_not_use_is_a_warning(monkeypatch):
    """This machine has no GPU: the kernel's backend computes on the CPU, as a
    CPU build of the backend would beside a real one."""
    monkeypatch.setattr(gpu, "detect_gpus", lambda: [FAKE_GPU])
    [finding] = doctor.check_kernel_gpu(doctor.Context.build(sandbox_mode="none"))
    assert finding.status == "WARN", finding
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    assert finding.detail == (f"a kernel allotted GPU 0 (NVIDIA H200) does not use it: its backend "
                              f"({backend}) computes on the CPU")
    assert "--gpus none" in finding.fix


def test_without_a_gpu_no_kernel_is_started_for_one(monkeypatch):
    monkeypatch.setattr(gpu, "detect_gpus", lambda: [])
    assert doctor.check_kernel_gpu(doctor.Context.build(sandbox_mode="none")) == []


# ------------------------------------------------------------------ sandbox


def test_without_bwrap_the_sandbox_is_a_warning_with_the_install_hint(no_bwrap):
    finding = doctor.sandbox_finding("auto")
    assert finding.status == "WARN" and "not installed" in finding.detail
    assert "unconfined" in finding.detail and "apt-get install bubblewrap" in finding.fix
    assert doctor.sandbox_finding("bwrap").status == "FAIL"


def test_ubuntus_apparmor_rule_gets_the_sysctl_that_lifts_it(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(fake.parent))
    proc_sys = tmp_path / "sys"
    (proc_sys / "kernel").mkdir(parents=True)
    rule = proc_sys / "kernel" / "apparmor_restrict_unprivileged_userns"
    problem = "bwrap cannot create namespaces here: setting up uid map: Permission denied"
    rule.write_text("1\n")
    assert "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in doctor.bwrap_fix(problem, proc_sys)
    rule.write_text("0\n")
    assert "--security-opt" in doctor.bwrap_fix(problem, proc_sys)


# ------------------------------------------------------------------ preflight


def test_preflight_passes_what_this_checkout_can_grade():
    assert doctor.preflight("linear_grading", "auto") == []


def test_preflight_names_the_missing_data_and_starts_no_kernel(no_data, monkeypatch):
    def forbidden(*args, **kwargs):
        pytest.fail("preflight must not start a kernel or import Keras")

    monkeypatch.setattr(execute, "run", forbidden)
    monkeypatch.setattr(doctor, "keras_probe", forbidden)
    (failure,) = doctor.preflight("mnist_mlp", "auto")
    assert failure.name == "dataset mnist" and failure.status == "FAIL"
    assert "AUTOGRADER_DATA_DIR" in failure.fix


def test_preflight_fails_on_bwrap_demanded_but_missing_and_on_an_unknown_assignment(no_bwrap):
    (failure,) = doctor.preflight("linear_grading", "bwrap")
    assert failure.name == "sandbox" and "apt-get install bubblewrap" in failure.fix
    (unknown,) = doctor.preflight("no_such_assignment", "none")
    assert unknown.status == "FAIL" and "No hidden suite" in unknown.detail


# ------------------------------------------------------------------ where it runs


def test_instructors_workflow_prints_the_table_before_grading_with_options_doctor_takes():
    workflow = REPO / ".github" / "workflows" / "grade-submissions.yml"
    steps = yaml.safe_load(workflow.read_text())["jobs"]["grade"]["steps"]
    runs = [step.get("run", "") for step in steps]
    doctor_step = next(i for i, run in enumerate(runs) if "autograder doctor" in run)
    grade_step = next(i for i, run in enumerate(runs) if "autograder grade" in run)
    assert doctor_step < grade_step
    (options,) = [opts for verb, opts in autograder_commands(workflow) if verb == "doctor"]
    accepted = {o for a in doctor_parser()._subparsers._group_actions[0].choices["doctor"]._actions
                for o in a.option_strings}
    assert options and set(options) <= accepted


def test_gradescope_setup_prints_the_table_without_failing_the_build():
    script = setup_script(assignment="mnist_mlp", datasets=["mnist"], sandbox="bwrap")
    call = script[script.index('"$VENV/bin/autograder" doctor'):]
    assert call.startswith('"$VENV/bin/autograder" doctor --assignment mnist_mlp --sandbox bwrap')
    assert "\n    || echo" in call.split("\n\n")[0]
    assert script.index("mnist.load_data()") < script.index("autograder\" doctor")  # after the download
