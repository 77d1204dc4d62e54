"""The adversarial corpus: submissions that attack the grader or break in the
ways students' notebooks break, each a committed file in
tests/submissions/linear_grading/ graded once by the real engine, in a real
kernel, sandboxed where bubblewrap works.

Every case states the exact score its work deserves, the outcome of the
checks it is about, and what the feedback must tell the student. The cases
after the table check the evidence an attack would leave behind: files
outside the work directory, secrets in outputs, connections made.
docs/threat-model.md lists each case with the defence it exercises.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from autograder.course import PACKAGE_DIR, default_course_dir, load_assignment
from autograder.engine import sandbox
from autograder.engine.execute import Watchdog
from autograder.engine.grade import grade_submission
from autograder.results import Status
from conftest import LINEAR_POINTS

pytestmark = pytest.mark.slow

A = "linear_grading"
SUBMISSIONS = Path(__file__).parent / "submissions"
CORPUS = SUBMISSIONS / A
POINTS = LINEAR_POINTS
MODEL_CHECKS = [name for name in POINTS if name != "test_data_summary"]
SECRET = "corpus-secret-7f3a9c"
"""The value of a variable in the grader's environment the kernel must never see."""
NO_SANDBOX = sandbox.bwrap_problem()

P, F, N = Status.PASS, Status.FAIL, Status.NOT_ATTEMPTED


def _generator():
    spec = importlib.util.spec_from_file_location("make_corpus", SUBMISSIONS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_corpus = _generator()


@dataclass(frozen=True)
class Case:
    name: str
    score: float
    checks: dict = field(default_factory=dict)
    """check name -> status, or (status, a phrase its message must contain)."""
    notes: tuple = ()
    """Phrases that some note of the result must contain."""
    limits: dict = field(default_factory=dict)
    sandbox: bool = False
    """Only meaningful inside bubblewrap: skipped where it cannot run."""
    sandbox_mode: str = "auto"
    staff_notes: tuple = ()
    """Phrases that some staff note of the result must contain."""


def every(status, phrase):
    return {name: (status, phrase) for name in POINTS}


def models(status, phrase):
    return {name: (status, phrase) for name in MODEL_CHECKS}


CASES = [
    # --- tampering: the score is what the work is worth, whatever the notebook claims
    Case("showtraceback", 0, {"test_data_summary": (F, "but it has 2000")},
         notes=("cell 'summary_selfcheck' raised AssertionError: x_mean should hold 3 values",
                "cell 'build_model' raised NotImplementedError")),
    Case("always_equal", 0, {"test_data_summary": (F, "`x_mean` does not match the data")}),
    Case("detect_grader", 4, {
        "test_data_summary": P, "test_model_is_linear": P,
        "test_input_output_shapes_and_parameters": P,
        "test_training_loss": (F, "mean squared error on the data is"),
        "test_rounded_grade_accuracy": (F, "grades only"),
        "test_weights_make_sense": (F, "every part's weight is positive"),
    }),
    Case("monkeypatch", 0, {
        "test_data_summary": (F, "does not match the data"),
        "test_model_is_linear": (F, "2 layers with weights"),
        "test_input_output_shapes_and_parameters": (F, "Your model has 41 parameters"),
        "test_weights_make_sense": (F, "your model has 24"),
    }),
    Case("patched_save", 0, {
        "test_data_summary": (N, "`x_mean` was not saved: saving it wrote no file"),
        **models(N, "`model` was not saved: saving it wrote no file"),
    }),
    Case("fake_files", 1, {"test_data_summary": P, **models(N, "does not define `model`")}),
    Case("read_hidden", 1, {"test_data_summary": P}, sandbox=True),
    Case("network", 1, {"test_data_summary": P}, sandbox=True),
    # As root or not, the kernel cannot undo the sandbox, and sees no other copy of the course.
    Case("undo_sandbox", 6.5, {"test_data_summary": P, "test_rounded_grade_accuracy": (F, "57.6%")},
         sandbox=True),
    # Unconfined, the kernel can reach the grader's private copy of the suite:
    # the change is detected and nothing is graded, never a full score.
    Case("rewrite_trusted_copy", 0, every(Status.ERROR, "Please see your instructor"),
         sandbox_mode="none", staff_notes=("INTEGRITY: The private copy of the hidden suite",)),
    Case("edited_test_cells", 6.5, {
        "test_data_summary": P, "test_rounded_grade_accuracy": (F, "57.6%"),
    }, notes=("Cell 'setup' was edited; the instructor's version was used",
              "Cell 'loss_hidden' was deleted from the submission; the instructor's version was restored",
              "Cell 'model_selfcheck' was edited")),
    Case("duplicate_ids", 5.5, {"test_data_summary": (F, "but it has 1")},
         notes=("Cell id 'summary' appears more than once", "ran as extra cells after it")),
    Case("lambda_layer", 1, {
        "test_data_summary": P,
        **models(F, "Your `model` has a Lambda layer `scale_points`: the grader loads models "
                    "with safe loading, which refuses Lambda layers because they carry "
                    "arbitrary Python code"),
    }),
    Case("custom_layer", 1, {
        "test_data_summary": P,
        **models(F, "Your `model` uses the custom class `Scale` (layer `scale_points`)"),
    }),
    # A model too slow to evaluate loses the checks it stalled, not the whole grading.
    Case("slow_model", 1, {"test_data_summary": P,
                           **models(F, "took longer than the grader's limit of 20 s")},
         limits={"evaluation_timeout": 20}),
    # --- broken or runaway: graded, never a crash, with a note that says what happened
    Case("invalid_json", 0, every(N, "not valid notebook JSON")),
    Case("python_file", 0, every(N, "the file holds plain text (Python code or an export?)")),
    Case("png_file", 0, every(N, "not a text file, so not a notebook")),
    Case("other_assignment", 0, every(N, "This is not the linear_grading notebook: it is the mnist_mlp notebook")),
    Case("empty_notebook", 0, every(N, "the notebook is empty")),
    Case("missing_answer", 5.5, {"test_data_summary": (N, "does not define `x_mean`")},
         notes=("Answer cell 'summary' is missing from the submission",)),
    Case("huge_output", 1, {"test_data_summary": P},
         notes=("printed more than the output limit of 1 MiB",
                "wrote more than 1 MiB straight to the kernel's standard output"),
         limits={"max_output_mib": 1}),
    # Cells after one that raised or timed out still run and earn their points.
    Case("infinite_loop", 5.5, {"test_data_summary": (N, "does not define `x_mean`")},
         notes=("cell 'summary' ran longer than the 20 s limit and was interrupted.",),
         limits={"cell_timeout": 20}),
    Case("ignores_interrupt", 0, every(N, "does not define"),
         notes=("A cell did not stop when interrupted at its time limit: the kernel was stopped.",
                "The kernel died in cell 'summary'."),
         limits={"cell_timeout": 20}),
    Case("infinite_recursion", 0, {"test_data_summary": N},
         notes=("cell 'summary' raised RecursionError: maximum recursion depth exceeded",)),
    Case("syntax_error", 5.5, {"test_data_summary": N, "test_model_is_linear": P},
         notes=("cell 'summary' raised SyntaxError",)),
    # A cell that kills the kernel is skipped in a fresh kernel: the rest still counts.
    Case("os_exit", 6.5, {"test_data_summary": P, "test_model_is_linear": P},
         notes=("The kernel died in cell 'experiments'",
                "The notebook was run again in a fresh kernel without that cell")),
    Case("segfault", 0, {"test_data_summary": N},
         notes=("The kernel died in cell 'summary' (for example os._exit, a crash in native code "
                "such as a segmentation fault",)),
    Case("memory_hog", 0, {"test_data_summary": N},
         notes=("Memory limit of 1 GiB exceeded: the kernel was stopped.",
                "The kernel died in cell 'summary'."),
         limits={"memory_gib": 1}),
    Case("fill_tmp", 0, {"test_data_summary": N},
         notes=("Memory limit of 1 GiB exceeded (counting",),
         limits={"memory_gib": 1}, sandbox=True),
    Case("fork_bomb", 0, {"test_data_summary": N},
         notes=("Process limit of 32 exceeded: the kernel was stopped.",
                "The kernel died in cell 'summary'."),
         limits={"max_processes": 32}, sandbox=True),
]
BY_NAME = {case.name: case for case in CASES}


@dataclass
class Graded:
    result: object
    workdir: Path
    canary: Path
    accepted: list

    @property
    def executed(self) -> str:
        """The executed notebook as text: what the student would get back."""
        return (self.workdir / "executed.ipynb").read_text() if (self.workdir / "executed.ipynb").is_file() else ""

    def outputs(self, grade_id: str) -> str:
        notebook = nbformat.reads(self.executed, as_version=4)
        (cell,) = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
        return "".join(o.get("text", "") + str(o.get("evalue", "")) for o in cell.get("outputs", []))


@contextlib.contextmanager
def _listening(accepted):
    """The grader's machine listens on the port the network case tries."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", make_corpus.NETWORK_PORT))
    server.listen()
    server.settimeout(0.5)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


@contextlib.contextmanager
def _short_grace(accepted):
    """A cell that ignores its interrupt is killed 3 s after its timeout, not 30."""
    grace, Watchdog.GRACE = Watchdog.GRACE, 3
    try:
        yield
    finally:
        Watchdog.GRACE = grace


@contextlib.contextmanager
def _nothing(accepted):
    yield


@contextlib.contextmanager
def _second_clone(accepted):
    """Another checkout of the course on the grader's machine, beside this one,
    with the hidden suite and the solution in it."""
    clone = default_course_dir().parent / f".second-clone-{os.getpid()}"
    (clone / "autograder" / "suites").mkdir(parents=True)
    shutil.copytree(PACKAGE_DIR / "suites" / A, clone / "autograder" / "suites" / A)
    shutil.copytree(load_assignment(A).source_notebook.parent, clone / "solutions" / A)
    try:
        yield
    finally:
        shutil.rmtree(clone)


AROUND = {"network": _listening, "ignores_interrupt": _short_grace, "undo_sandbox": _second_clone}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """``corpus(name)``: the case's file graded once, with a secret in the
    grader's environment and a canary file beside the work directory."""
    cache = {}

    def _graded(name):
        case = BY_NAME[name]
        if case.sandbox and NO_SANDBOX:
            pytest.skip(f"needs the sandbox: {NO_SANDBOX}")
        if name not in cache:
            base = tmp_path_factory.mktemp(name)
            canary = base / "canary.txt"
            canary.write_text("untouched")
            accepted = []
            with _secret_in_environment(), AROUND.get(name, _nothing)(accepted):
                result = grade_submission(
                    CORPUS / f"{name}.ipynb", load_assignment(A, **case.limits),
                    workdir=base / "work", sandbox_mode=case.sandbox_mode,
                )
            cache[name] = Graded(result, base / "work", canary, accepted)
        return cache[name]

    return _graded


@contextlib.contextmanager
def _secret_in_environment():
    previous = os.environ.get("GRADER_API_TOKEN")
    os.environ["GRADER_API_TOKEN"] = SECRET
    try:
        yield
    finally:
        if previous is None:
            del os.environ["GRADER_API_TOKEN"]
        else:
            os.environ["GRADER_API_TOKEN"] = previous


def test_the_committed_corpus_is_what_the_generator_builds():
    built = make_corpus.build()
    committed = {p.name: p.read_bytes() for p in CORPUS.iterdir()}
    assert sorted(committed) == sorted(built), "run tests/submissions/make_corpus.py"
    stale = [name for name in built if committed[name] != built[name]]
    assert not stale, f"run tests/submissions/make_corpus.py; these differ: {stale}"
    assert sorted(built) == sorted(f"{case.name}.ipynb" for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case, corpus):
    result = corpus(case.name).result
    checks = {t.name: t for t in result.tests}
    assert {name: t.max_score for name, t in checks.items()} == POINTS
    assert result.score == case.score, _explain(result)
    for name, expected in case.checks.items():
        status, phrase = expected if isinstance(expected, tuple) else (expected, None)
        assert checks[name].status is status, f"{name}: {checks[name].output}"
        if phrase:
            assert phrase in checks[name].output, f"{name}: {checks[name].output}"
    for phrase in case.notes:
        assert any(phrase in note for note in result.notes), f"{phrase!r} not in {result.notes}"
    for phrase in case.staff_notes:
        assert any(phrase in note for note in result.staff_notes), f"{phrase!r} not in {result.staff_notes}"


def _explain(result) -> str:
    lines = [f"{t.name}: {t.status.value} {t.score}/{t.max_score} {t.output[:200]}" for t in result.tests]
    return "\n".join(lines + [f"note: {n}" for n in result.notes])


def test_detected_grading_changes_nothing_and_the_graders_secrets_stay_out(corpus):
    graded = corpus("detect_grader")
    printed = graded.outputs("summary")
    assert "grading environment detected: True" in printed  # the attack did run
    assert "loss after 60 epochs: 0.0010" in graded.outputs("train")  # and claimed success
    assert SECRET not in graded.executed and "GRADER_API_TOKEN" not in printed
    assert SECRET not in json.dumps(graded.result.to_dict())


def test_fake_results_and_planted_files_are_ignored_and_nothing_outside_is_written(corpus):
    graded = corpus("fake_files")
    assert "planted:" in graded.outputs("summary")
    assert graded.canary.read_text() == "untouched"
    for name in ("report.json", "executed.ipynb"):
        assert not (graded.workdir / name).is_symlink(), f"{name} is still the planted link"
    assert "FAKE-PERFECT" not in json.dumps(graded.result.to_dict())
    assert "FAKE-PERFECT" not in (graded.workdir / "report.json").read_text()


@pytest.mark.skipif(NO_SANDBOX is not None, reason=f"needs the sandbox: {NO_SANDBOX}")
def test_hidden_suites_solutions_and_home_stay_hidden_and_read_only(corpus):
    graded = corpus("read_hidden")
    printed = graded.outputs("summary")
    assert "hidden:" in printed and "refused:" in printed  # the attack did run
    assert "LEAK" not in printed and "WROTE" not in printed
    suite = (PACKAGE_DIR / "suites" / A / f"test_{A}.py").read_text()
    solution = load_assignment(A).source_notebook.read_text()
    secrets = {"MAX_TRAINING_MSE": suite, "def test_weights_make_sense": suite,
               "BEGIN HIDDEN TESTS": solution, "BEGIN SOLUTION": solution}
    feedback = graded.executed + json.dumps(graded.result.to_dict())
    for text, source in secrets.items():
        assert text in source  # a real marker of what must stay hidden
        assert text not in feedback
    course = default_course_dir()
    assert not (PACKAGE_DIR / "pwned.txt").exists() and not (course / "pwned.txt").exists()


@pytest.mark.skipif(NO_SANDBOX is not None, reason=f"needs the sandbox: {NO_SANDBOX}")
def test_the_network_is_unreachable(corpus):
    graded = corpus("network")
    printed = graded.outputs("summary")
    assert "interfaces: ['lo']" in printed
    assert printed.count("blocked:") == 3 and "CONNECTED" not in printed
    assert graded.accepted == []


def test_output_is_capped_in_the_notebook_and_in_the_kernel_log(corpus):
    graded = corpus("huge_output")
    assert len(graded.outputs("summary")) < 1.2 * 1024**2
    assert (graded.workdir / "kernel.log").stat().st_size < 1.1 * 1024**2


def test_the_cell_that_killed_the_kernel_says_it_was_skipped(corpus):
    graded = corpus("os_exit")
    assert "the grader skipped this cell on the next run" in graded.outputs("experiments")


@pytest.mark.skipif(NO_SANDBOX is not None, reason=f"needs the sandbox: {NO_SANDBOX}")
def test_the_kernel_cannot_undo_its_sandbox_nor_find_another_copy_of_the_course(corpus):
    graded = corpus("undo_sandbox")
    printed = graded.outputs("experiments")
    assert "uid 65534" in printed  # never root, whoever runs the grader
    assert printed.count("refused:") == 10, printed  # every attempt ran, and failed
    assert "GOT" not in printed and "WROTE" not in printed
    assert "nothing found: []" in printed and "LEAK" not in printed


def test_a_rewritten_private_suite_is_detected_without_a_sandbox(corpus):
    graded = corpus("rewrite_trusted_copy")
    assert "replaced" in graded.outputs("summary")  # the attack did run
    assert graded.result.max_score == sum(POINTS.values())
    assert not any("INTEGRITY" in note for note in graded.result.notes)  # staff only
