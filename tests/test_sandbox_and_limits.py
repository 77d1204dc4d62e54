"""The student's kernel is confined: it cannot see hidden suites, reach the
network or write outside its work directory, and the limits stop runaway
notebooks with a message that says which limit was hit."""

import socket
import threading

import nbformat
import pytest

from autograder.course import PACKAGE_DIR, SUITES_DIR, load_assignment
from autograder.engine import sandbox
from autograder.engine.grade import grade_submission
from autograder.results import Status
from conftest import LINEAR_SUMMARY, by_name, make_submission

pytestmark = pytest.mark.slow
A = "linear_grading"
needs_bwrap = pytest.mark.skipif(
    sandbox.bwrap_problem() is not None, reason=f"no sandbox here: {sandbox.bwrap_problem()}"
)


def run(tmp_path, code, *, mode="auto", **limits):
    """Grade a submission whose summary cell runs ``code``; return the result
    and the executed notebook's outputs of that cell as text."""
    notebook = make_submission(tmp_path / "sub" / f"{A}.ipynb", A, {"summary": code})
    workdir = tmp_path / "work"
    result = grade_submission(notebook, load_assignment(A, **limits), workdir=workdir,
                              sandbox_mode=mode)
    executed = nbformat.read(workdir / "executed.ipynb", as_version=4)
    (cell,) = [c for c in executed.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "summary"]
    text = "".join(o.get("text", "") + str(o.get("evalue", "")) for o in cell.outputs)
    return result, text


@needs_bwrap
def test_hidden_suites_and_solutions_are_invisible(tmp_path):
    code = (
        "import pathlib\n"
        f"print('suites:', sorted(p.name for p in pathlib.Path({str(SUITES_DIR)!r}).iterdir()))\n"
        f"print('solutions:', pathlib.Path({str(load_assignment(A).source_notebook)!r}).exists())\n"
        + LINEAR_SUMMARY
    )
    result, text = run(tmp_path, code, mode="bwrap")
    assert "suites: []" in text
    assert "solutions: False" in text
    assert by_name(result)["test_data_summary"].status is Status.PASS


@needs_bwrap
def test_network_is_unreachable(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(20)
    accepted = []
    threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True).start()
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')\n"
        "except OSError as exc:\n"
        "    print('blocked:', type(exc).__name__)\n"
    )
    _, text = run(tmp_path, code, mode="bwrap")
    server.close()
    assert "blocked" in text and "connected" not in text
    assert accepted in ([], [None])


def _accept(server):
    try:
        return server.accept()
    except OSError:
        return None


@needs_bwrap
def test_writes_outside_the_work_directory_fail(tmp_path):
    target = PACKAGE_DIR / "pwned.txt"  # the kit itself, wherever it is installed
    code = (
        f"try:\n    open({str(target)!r}, 'w').write('x'); print('wrote')\n"
        "except OSError as exc:\n    print('refused:', exc.strerror)\n"
    )
    _, text = run(tmp_path, code, mode="bwrap")
    assert "refused: Read-only file system" in text
    assert not target.exists()


def test_memory_limit_stops_the_kernel_and_says_so(tmp_path):
    code = "import numpy as np\nhog = np.ones((400, 1024, 1024))  # 3.2 GB\nimport time; time.sleep(5)"
    result, _ = run(tmp_path, code, memory_gib=1.0)
    assert any(n.startswith("Memory limit of 1 GiB exceeded") for n in result.notes)
    assert result.score == 0
    assert {t.status for t in result.tests} == {Status.NOT_ATTEMPTED}


def test_process_limit_stops_the_kernel_and_says_so(tmp_path):
    code = (
        "import subprocess, time\n"
        "children = [subprocess.Popen(['sleep', '30']) for _ in range(40)]\n"
        "time.sleep(5)"
    )
    result, _ = run(tmp_path, code, max_processes=16)
    assert any(n.startswith("Process limit of 16 exceeded") for n in result.notes)


def test_infinite_loop_is_interrupted_and_the_rest_still_runs(tmp_path):
    # Long enough for the set-up cell's TensorFlow import on a loaded machine.
    result, _ = run(tmp_path, "while True:\n    pass", cell_timeout=20)
    assert "cell 'summary' ran longer than the 20 s limit and was interrupted." in result.notes
    assert any("'build_model' raised NotImplementedError" in n for n in result.notes)


def test_huge_output_is_capped(tmp_path):
    code = "for _ in range(2000):\n    print('x' * 2000)\n" + LINEAR_SUMMARY
    result, text = run(tmp_path, code, max_output_mib=1)
    assert any("output limit of 1 MiB" in n for n in result.notes)
    assert len(text) < 1.2 * 1024**2
    assert by_name(result)["test_data_summary"].status is Status.PASS


def test_a_kernel_that_exits_is_graded_not_attempted(tmp_path):
    result, _ = run(tmp_path, "import os\nos._exit(1)")
    assert result.score == 0
    assert any("kernel died" in n for n in result.notes)


def test_a_cell_that_ignores_interrupts_is_killed_after_a_grace_period(tmp_path, monkeypatch):
    from autograder.engine.execute import Watchdog

    monkeypatch.setattr(Watchdog, "GRACE", 3)
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    result, _ = run(tmp_path, code, cell_timeout=20)
    assert any(n.startswith("A cell did not stop when interrupted") for n in result.notes)
    assert any("kernel died" in n for n in result.notes)


@needs_bwrap
def test_datasets_stay_readable_even_under_tmp_and_through_a_link(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (real / "marker.txt").write_text("visible")
    data = tmp_path / "data"
    data.symlink_to(real)
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(data))
    code = f"print(open({str(data / 'marker.txt')!r}).read())\n" + LINEAR_SUMMARY
    result, text = run(tmp_path, code, mode="bwrap")
    assert "visible" in text
    assert by_name(result)["test_data_summary"].status is Status.PASS
