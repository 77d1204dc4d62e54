"""Mechanics of the confinement, apart from any one submission: what the
sandbox shows and hides, what the kernel inherits, and how the trusted side
reads what the kernel left behind. Submissions that attack these defences
are the corpus in tests/test_adversarial.py."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from autograder.course import default_course_dir, load_assignment
from autograder.engine import sandbox
from autograder.engine.evaluate import run_suite
from autograder.engine import execute
from autograder.engine.execute import kernel_env
from autograder.engine.grade import grade_submission
from autograder.results import Status
from conftest import LINEAR_MODEL, LINEAR_SUMMARY, REPO, by_name, make_submission

A = "linear_grading"
needs_bwrap = pytest.mark.skipif(
    sandbox.bwrap_problem() is not None, reason=f"no sandbox here: {sandbox.bwrap_problem()}"
)


def in_sandbox(tmp_path, script, **paths):
    """Run a shell ``script`` under the engine's bwrap prefix."""
    command = sandbox.bwrap_command(**paths)
    return subprocess.run([*command, "sh", "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


@needs_bwrap
def test_only_what_is_bound_exists_and_none_of_it_is_writable(tmp_path):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    (course / "solutions" / "answer.txt").write_text("the answer")
    (course / "kit" / "suites").mkdir(parents=True)
    (course / "kit" / "suites" / "test_secret.py").write_text("secret")
    (course / "kit" / "loader.py").write_text("needed\n")
    clone = tmp_path / "second-clone" / "kit" / "suites"
    clone.mkdir(parents=True)
    (clone / "test_secret.py").write_text("secret")
    work = tmp_path / "work"
    work.mkdir()
    script = (
        f"echo course:; ls -A {course}; echo kit:; cat {course / 'kit' / 'loader.py'}; "
        f"echo suites:; ls -A {course / 'kit' / 'suites'}; "
        f"test -e {clone} && echo clone; echo root:; ls -A /; echo writes:; "
        f"touch {course / 'x'} 2>/dev/null && echo course; "
        f"touch {course / 'kit' / 'suites' / 'x'} 2>/dev/null && echo suites; "
        f"touch {course / 'kit' / 'x'} 2>/dev/null && echo kit; "
        "touch /x 2>/dev/null && echo root; "
        f"touch {work / 'x'} && echo work"
    )
    # As the engine does: the kit bound in, its suites covered; nothing else of the course.
    done = in_sandbox(tmp_path, script, writable=[work], readable=[course / "kit"],
                      hidden=[course / "kit" / "suites", course / "solutions"])
    out = done.stdout.split()
    assert out[:out.index("root:")] == ["course:", "kit", "kit:", "needed", "suites:"], done.stderr
    root = out[out.index("root:") + 1:out.index("writes:")]
    assert {"usr", "proc", "tmp"} <= set(root) and not {"home", "root", "srv", "opt"} & set(root)
    assert out[out.index("writes:") + 1:] == ["course", "work"]
    # That write went to the sandbox's private /tmp, not the real course.
    assert not (course / "x").exists() and (work / "x").exists()


def test_packages_on_pythonpath_are_shown_but_never_the_checkout_or_tmp(tmp_path, monkeypatch):
    checkout, packages = tmp_path / "checkout", tmp_path / "opt-site"
    (checkout / ".venv").mkdir(parents=True)
    packages.mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(packages), str(checkout), str(checkout / ".venv"), str(tmp_path), "/tmp"]))
    shown = sandbox.python_paths(checkout)
    assert packages in shown and Path(sys.prefix).resolve() in {p.resolve() for p in shown}
    # The checkout holds solutions; a folder above it holds the checkout; /tmp is the kernel's own.
    assert not {checkout, checkout / ".venv", tmp_path, Path("/tmp")} & set(shown)


@needs_bwrap
def test_the_home_directory_is_absent_and_tmp_is_private_and_capped(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("password")
    (tmp_path / "shown").mkdir()
    (tmp_path / "shown" / "file.txt").write_text("visible\n")
    monkeypatch.setenv("HOME", str(home))
    done = in_sandbox(
        tmp_path,
        f"cat {tmp_path / 'shown' / 'file.txt'}; test -e {home} || echo no-home; echo ---; "
        "head -c 3000000 /dev/zero > /tmp/fill 2>/dev/null || echo tmp-full; "
        "head -c 3000000 /dev/zero > /dev/shm/fill 2>/dev/null || echo shm-full",
        # tmp_path lies under the private /tmp: what is bound comes back there.
        writable=[], readable=[tmp_path / "shown"], hidden=[], tmpfs_bytes=2_000_000,
    )
    assert done.stdout.split() == ["visible", "no-home", "---", "tmp-full", "shm-full"], done.stderr


ESCAPES = {
    "mount": "mount -t tmpfs none {kit}",
    "umount": "umount {kit}",
    "remount": "mount -o remount,rw {kit}",
    "unshare-user": "unshare -U true",
    "unshare-mount": "unshare -m true",
    "chroot": "chroot / true",
}
"""What a kernel would run to undo its confinement; each must fail."""


def _escape_script(kit: Path) -> str:
    tries = "; ".join(f"{command.format(kit=kit)} >/dev/null 2>&1 && echo ESCAPED-{name} "
                      f"|| echo refused-{name}" for name, command in ESCAPES.items())
    return (f"echo uid=$(id -u); grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; {tries}; "
            f"touch {kit}/x 2>/dev/null && echo WROTE || echo refused-write")


def _assert_confined(output: str) -> None:
    assert "uid=65534" in output, output
    assert "CapEff:\t0000000000000000" in output and "NoNewPrivs:\t1" in output
    assert "Seccomp:\t2" in output  # the filter is on
    for name in [*ESCAPES, "write"]:
        assert f"refused-{name}" in output, output
    assert "ESCAPED" not in output and "WROTE" not in output


@needs_bwrap
def test_a_kernel_started_by_root_runs_as_nobody_without_privileges(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the grader is not root here")
    kit = tmp_path / "kit"
    kit.mkdir()
    seccomp = tmp_path / "seccomp.bpf"
    seccomp.write_bytes(sandbox.seccomp_filter())
    command = sandbox.bwrap_command(writable=[], readable=[kit], seccomp_file=seccomp)
    done = subprocess.run([*command, "sh", "-c", _escape_script(kit)], capture_output=True,
                          text=True, timeout=60)
    _assert_confined(done.stdout)
    # ptrace is refused too, which the shell cannot show.
    python = "import ctypes; print('ptrace', ctypes.CDLL(None).ptrace(16, 1, 0, 0))"
    command = sandbox.bwrap_command(writable=[], readable=[Path(sys.prefix), Path(sys.base_prefix)],
                                    seccomp_file=seccomp)
    done = subprocess.run([*command, sys.executable, "-c", python], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "ptrace -1", done.stderr


def _ordinary_user() -> int:
    """The uid of a system user created to grade as (root only)."""
    if os.geteuid() != 0 or not all(map(shutil.which, ("useradd", "setpriv", "unshare"))):
        pytest.skip("creating a user to grade as needs root, useradd, setpriv and unshare")
    user = "autograder-test"
    if subprocess.run(["id", "-u", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
    return int(subprocess.run(["id", "-u", user], capture_output=True, text=True).stdout)


def _as_user(uid: int, command: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *command]


def _barrier(path: Path) -> Path | None:
    """The outermost folder above ``path`` that other users cannot enter, if any."""
    return next((folder for folder in reversed(path.parents)
                 if not os.stat(folder).st_mode & 0o001), None)


def _reachable_by_everyone(paths: list[Path], stage: Path) -> list[str]:
    """A command prefix that runs its command in a private mount namespace in
    which each of ``paths`` can be reached by any user: a folder that keeps
    others out above one of them (``/root``, where CI's Python lives) is
    covered by an empty tmpfs holding only ``paths``, bound back from copies
    of their mounts made under ``stage`` first. The machine itself is not
    changed, and nothing else below that folder can be seen."""
    paths = sorted({path.resolve() for path in paths})
    paths = [path for path in paths if not any(other in path.parents for other in paths)]
    # Each path's barrier is its outermost one, so no barrier lies inside another.
    barrier_of = {path: _barrier(path) for path in paths}
    blocked = [path for path in paths if barrier_of[path] is not None]
    barriers = sorted({barrier_of[path] for path in blocked})
    lines = ["set -e"]
    for number, path in enumerate(blocked):
        lines.append(f"mkdir -p '{stage}/{number}' && mount --bind '{path}' '{stage}/{number}'")
    lines += [f"mount -t tmpfs -o mode=0755 tmpfs '{barrier}'" for barrier in barriers]
    for number, path in enumerate(blocked):
        lines.append(f"mkdir -p '{path}' && mount --bind '{stage}/{number}' '{path}'")
    lines.append('exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines), "sh"]


@needs_bwrap
def test_a_kernel_started_by_an_ordinary_user_is_confined_the_same(tmp_path):
    uid = _ordinary_user()
    place = Path(tempfile.mkdtemp(prefix="autograder-user-test-"))  # a folder that user can reach
    try:
        os.chmod(place, 0o755)
        kit = place / "kit"
        kit.mkdir()
        seccomp = place / "seccomp.bpf"
        seccomp.write_bytes(sandbox.seccomp_filter())
        command = sandbox.bwrap_command(writable=[], readable=[kit], seccomp_file=seccomp)
        done = subprocess.run(_as_user(uid, [*command, "sh", "-c", _escape_script(kit)]),
                              capture_output=True, text=True, timeout=60, cwd=place)
        if "Operation not permitted" in done.stderr and "uid=" not in done.stdout:
            pytest.skip(f"unprivileged user namespaces are off here: {done.stderr.strip()}")
        _assert_confined(done.stdout)
    finally:
        shutil.rmtree(place)


@needs_bwrap
@pytest.mark.datasets("grading")
def test_an_ordinary_user_grades_the_reference_in_the_sandbox(tmp_path):
    """The whole grader, not only its sandbox, as a user without privileges:
    the kit, Python and the data read-only to them, a home of their own."""
    uid = _ordinary_user()
    place = Path(tempfile.mkdtemp(prefix="autograder-user-test-"))
    try:
        os.chmod(place, 0o755)
        home = place / "home"
        home.mkdir()
        os.chown(home, uid, uid)
        solution = REPO / "solutions" / A / f"{A}.ipynb"
        needed = [REPO, Path(sys.prefix), Path(sys.base_prefix),
                  *(Path(folder) for folder in os.environ.get("AUTOGRADER_DATA_DIR", "").split(os.pathsep)
                    if folder)]
        reachable = _reachable_by_everyone(needed, place / "stage")
        # The grader starts Python again (the evaluator, the kernel): can this user?
        probe = (f"import subprocess, sys; open({str(solution)!r}); "
                 "subprocess.run([sys.executable, '-c', 'pass'], check=True)")
        reach = subprocess.run([*reachable, *_as_user(uid, [sys.executable, "-c", probe])],
                               capture_output=True, text=True, cwd=home)
        if reach.returncode != 0:
            pytest.skip(f"an ordinary user cannot run this Python or read the kit here: "
                        f"{reach.stderr.strip().splitlines()[-1]}")
        done = subprocess.run(
            [*reachable, *_as_user(uid, [sys.executable, "-m", "autograder.cli", "grade",
                                         str(solution), "--assignment", A, "--sandbox", "bwrap",
                                         "--json", str(home / "results.json")])],
            capture_output=True, text=True, timeout=600, cwd=home,
            # The course's secret is the grader's to set; this user could not create it in the checkout.
            env={**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                 "AUTOGRADER_HOLDOUT_SEED": "7"},
        )
        if "Operation not permitted" in done.stderr and not (home / "results.json").exists():
            pytest.skip(f"unprivileged user namespaces are off here: {done.stderr.strip()[-300:]}")
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads((home / "results.json").read_text())
        assert result["score"] == result["max_score"] == 10 and result["sandbox"] == "bwrap"
    finally:
        shutil.rmtree(place)


def test_the_kernel_inherits_only_the_allowed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_API_TOKEN", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", "/data")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
    env = kernel_env(tmp_path)
    assert "secret" not in env.values()
    assert env["AUTOGRADER_DATA_DIR"] == "/data" and env["TF_NUM_INTEROP_THREADS"] == "1"
    assert env["PATH"] == os.environ["PATH"] and env["IPYTHONDIR"].startswith(str(tmp_path))


SUITE = '''
import pytest

@pytest.mark.parametrize("name", ["real", "linked", "fifo", "huge"])
def test_reads(artifacts, name):
    assert artifacts.array(name).tolist() == [1, 2, 3]
'''


def test_the_suite_reads_only_regular_files_and_never_writes_through_links(tmp_path, monkeypatch):
    import autograder.artifacts

    monkeypatch.setattr(autograder.artifacts, "MAX_ARTIFACT_BYTES", 10_000)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_reads.py").write_text(SUITE)
    outside = tmp_path / "outside.npy"
    np.save(outside, np.array([1, 2, 3]))
    work = tmp_path / "work"
    artifacts = work / "artifacts"
    artifacts.mkdir(parents=True)
    np.save(artifacts / "real.npy", np.array([1, 2, 3]))
    (artifacts / "linked.npy").symlink_to(outside)
    os.mkfifo(artifacts / "fifo.npy")
    np.save(artifacts / "huge.npy", np.zeros(100_000))
    # What a kernel could plant where the suite's process used to start.
    (work / "pytest.py").write_text("raise SystemExit('planted module ran')")
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched")
    (work / "report.json").symlink_to(canary)

    checks = {c.name: c for c in run_suite(suite, artifacts, work / "report.json", timeout=120)}
    assert checks["test_reads[real]"].status is Status.PASS
    assert "was not read because it is a symbolic link" in checks["test_reads[linked]"].output
    assert "was not read because it is not a regular file" in checks["test_reads[fifo]"].output
    assert "over the grader's limit" in checks["test_reads[huge]"].output
    assert canary.read_text() == "untouched"
    assert json.loads((work / "report.json").read_text())["tests"]


@pytest.mark.slow
@needs_bwrap
def test_the_kernel_reads_its_data_through_a_linked_folder_and_sees_nothing_else_there(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(default_course_dir() / "datasets" / "grading.npz", real / "grading.npz")
    (real / "marker.txt").write_text("not for the kernel")
    data = tmp_path / "data"
    data.symlink_to(real)
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(data))
    code = ("import os\nfrom autograder.datasets import _files\n"
            "found = _files.fetch_file('grading', 'grading.npz')\n"
            "print('view:', sorted(os.listdir(found.parent)))\n"
            f"print('real:', os.path.exists({str(real / 'marker.txt')!r}))\n" + LINEAR_SUMMARY)
    notebook = make_submission(tmp_path / "sub" / f"{A}.ipynb", A, {"summary": code})
    workdir = tmp_path / "work"
    result = grade_submission(notebook, load_assignment(A), workdir=workdir, sandbox_mode="bwrap")
    executed = (workdir / "executed.ipynb").read_text()
    assert "view: ['grading.npz']" in executed and "real: False" in executed
    assert by_name(result)["test_data_summary"].status is Status.PASS


@pytest.mark.slow
def test_the_time_budget_stops_the_notebook_and_the_export_gets_only_a_short_allowance(tmp_path, monkeypatch):
    """A notebook that spends its whole budget is cut off there; the export
    after it then gets EXPORT_ALLOWANCE seconds, not a cell's whole limit, so
    a replaced keras.Model.save cannot train on unmeasured."""
    monkeypatch.setattr(execute, "EXPORT_ALLOWANCE", 3)
    slow_save = (LINEAR_MODEL + "\nimport time\n_save = keras.Model.save\n"
                 "keras.Model.save = lambda self, *a, **k: (time.sleep(60), _save(self, *a, **k))")
    notebook = make_submission(tmp_path / f"{A}.ipynb", A, {
        "summary": LINEAR_SUMMARY, "build_model": slow_save,
        "train": "import time\ntime.sleep(120)", "accuracy": "time.sleep(120)"})
    result = grade_submission(notebook, load_assignment(A, notebook_timeout=30))
    notes = " ".join(result.notes)
    assert "cell 'train' ran longer than" in notes and "was interrupted" in notes, notes
    assert "The notebook ran longer than its time budget of 30 s" in notes, notes
    assert "Saving your variables for grading ran past its 3 s" in notes, notes
    # The model was saved first and stalled there: nothing after it was saved either.
    assert result.score == 0
    assert by_name(result)["test_data_summary"].status is Status.NOT_ATTEMPTED
