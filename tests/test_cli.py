"""The command line: exit codes and messages when grading cannot run."""

import pytest

from autograder import cli, course


def test_unknown_assignment_exits_2_naming_the_known_ones(tmp_path, capsys):
    notebook = tmp_path / "hw.ipynb"
    notebook.write_text("{}")
    assert cli.main(["grade", str(notebook), "--assignment", "no_such_hw"]) == 2
    err = capsys.readouterr().err
    assert "No hidden suite for assignment 'no_such_hw'" in err
    assert "linear_grading" in err


def test_list_prints_the_assignments_with_hidden_suites(capsys):
    assert cli.main(["list"]) == 0
    assert "linear_grading" in capsys.readouterr().out.split()


def test_missing_release_tells_the_instructor_to_generate_it(tmp_path):
    with pytest.raises(course.CourseError, match="nbgrader generate_assignment"):
        course.load_assignment("linear_grading", course_dir=tmp_path)


def test_limits_are_declared_per_assignment_and_overridable():
    declared = course.load_assignment("linear_grading")
    assert declared.limits.cell_timeout == 120
    assert declared.artifacts["model"] == "model"
    overridden = course.load_assignment("linear_grading", cell_timeout=5, evaluation_timeout=None)
    assert overridden.limits.cell_timeout == 5
    assert overridden.limits.evaluation_timeout == declared.limits.evaluation_timeout


def test_an_assignment_can_allow_one_backend_more_time(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    under_torch = course.load_assignment("mnist_mlp")
    assert (under_torch.limits.cell_timeout, under_torch.limits.notebook_timeout) == (900, 1200)
    assert course.load_assignment("mnist_mlp", cell_timeout=400).limits.cell_timeout == 400
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert course.load_assignment("mnist_mlp").limits.cell_timeout == 300


@pytest.mark.parametrize("limits, message", [
    ("[limits.backend.theano]\ncell_timeout = 9", r"unknown backend\(s\) theano in \[limits.backend\]"),
    ("[limits.backend.torch]\ncell_time = 9", r"\[limits.backend.torch\]: unknown limit\(s\) cell_time"),
    ("[limits]\nbackend = 3", r"\[limits.backend\] must hold one table per backend"),
])
def test_a_backend_limit_that_cannot_apply_is_refused_naming_the_table(tmp_path, monkeypatch, limits, message):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "assignment.toml").write_text(limits + "\n")
    monkeypatch.setattr(course, "SUITES_DIR", tmp_path)
    with pytest.raises(course.CourseError, match=message):
        course.load_assignment("x")


def test_a_kernel_that_cannot_start_exits_2_with_a_message(tmp_path, monkeypatch, capsys):
    # A real but broken kernelspec named python3, found first on JUPYTER_PATH.
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        '{"argv": ["/bin/false", "{connection_file}"], "display_name": "broken", "language": "python"}'
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    release = course.load_assignment("linear_grading").release_notebook
    code = cli.main(["grade", str(release), "--assignment", "linear_grading"])
    assert code == 2
    assert "Could not start a python3 Jupyter kernel" in capsys.readouterr().err
