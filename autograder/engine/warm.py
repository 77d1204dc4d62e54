"""A warm trusted evaluator: the hidden suite's process, imports paid once.

Every evaluation runs pytest in a fresh process that imports Keras and its
backend, NumPy, pytest and the kit before it checks anything: seconds per
submission, more than the checks themselves take on a small assignment. A
:class:`WarmEvaluator` pays that once per grading process. It starts a
*zygote*, a trusted Python process that imports all of that from a private
copy of the kit and then waits; for each evaluation it forks a child that
runs pytest with the suite's arguments, in the evaluation's private
directory, and exits. No state crosses submissions: each child is a copy of
the zygote as it was before any evaluation, and nothing of a child returns
to it except its exit status.

The zygote runs no Keras computation itself, so no backend thread pool
exists when it forks. It is trusted the way the cold evaluator is: it
imports from a copy of the kit made when it started (kept for its lifetime,
and reused only while the kit it copied fingerprints the same as the
grading's trusted copy), it never reads the kernel's work directory, and it
runs with the evaluator's environment (the CPU only, unless an assignment
evaluates on the GPU; then the cold evaluator runs, since the device is
fixed when the backend is imported).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

PRELOADED = ("numpy", "keras", "pytest", "autograder.suite_plugin", "autograder.checks",
             "autograder.datasets")
"""What the zygote imports before it serves (the suites import the rest)."""
READY = {"ready": True}
IMPORT_TIME_PREFIXES = ("KERAS_", "TF_", "CUDA_", "XLA_", "JAX_", "PYTHON", "OMP_", "MKL_")
"""Environment variables read when the backend is imported: a zygote serves
only evaluations whose environment agrees with its own on them. Every other
variable an evaluation gets afresh."""


class WarmEvaluatorError(Exception):
    """The zygote is gone or answered out of turn; grade with a cold evaluator."""


class WarmEvaluator:
    """A zygote serving evaluations to this process, one at a time."""

    def __init__(self, kit_dir: Path, env: Mapping[str, str]):
        self.private = Path(tempfile.mkdtemp(prefix="autograder-warm-"))
        shutil.copytree(kit_dir, self.private / "kit", symlinks=True)
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "autograder.engine.warm"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=self.private, env={**env, "PYTHONPATH": str(self.private / "kit")},
        )
        self._lines = JsonLines(self.process.stdout)
        self._ready = False

    def run(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str],
            timeout: float) -> tuple[int | None, str]:
        """Run ``pytest args`` in a forked child in ``cwd`` with the
        environment ``env``: its exit code (``None`` when it ran past
        ``timeout`` seconds and was killed) and its output."""
        deadline = time.monotonic() + timeout
        try:
            if not self._ready:
                # The zygote imports while the kernel runs; waiting for it
                # counts against the evaluation's time as a cold start would.
                self._ready = self._reply(deadline) == READY
            output = Path(cwd) / ".evaluator-output"
            self._send({"args": list(args), "cwd": str(cwd), "env": dict(env), "output": str(output)})
            pid = self._reply(deadline).get("pid")
        except TimeoutError:
            raise WarmEvaluatorError(f"the zygote was not ready within {timeout} s") from None
        if not isinstance(pid, int):
            raise WarmEvaluatorError("the zygote did not start an evaluation")
        try:
            code = self._reply(deadline)["exit"]
        except TimeoutError:
            os.killpg(pid, signal.SIGKILL)
            try:
                self._reply(time.monotonic() + 30)  # the zygote reaps it and says so
            except TimeoutError:
                raise WarmEvaluatorError("the zygote did not reap a stopped evaluation") from None
            code = None
        text = output.read_text(errors="replace") if output.is_file() else ""
        return code, text

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.private, ignore_errors=True)

    def _send(self, message: dict) -> None:
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WarmEvaluatorError(f"the zygote is gone ({exc})") from None

    def _reply(self, deadline: float) -> dict:
        """The zygote's next line; :class:`TimeoutError` at ``deadline``."""
        try:
            return self._lines.next(deadline)
        except EOFError:
            raise WarmEvaluatorError(f"the zygote exited with code {self.process.wait()}") from None


class JsonLines:
    """JSON objects, one a line, read from a child process's ``stream`` (its
    standard output) without blocking past a deadline."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self._buffer = b""

    def next(self, deadline: float) -> dict:
        """The next object: :class:`TimeoutError` when none is whole by
        ``deadline`` (``time.monotonic()``), :class:`EOFError` when the child
        closed the stream."""
        while b"\n" not in self._buffer:
            if not select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


_evaluators: dict[tuple, WarmEvaluator] = {}


def evaluator(kit_dir: Path, fingerprint: str, env: Mapping[str, str]) -> WarmEvaluator:
    """This process's warm evaluator for a kit that fingerprints as
    ``fingerprint`` and the environment ``env`` (as far as importing reads
    it: :data:`IMPORT_TIME_PREFIXES`), started from a copy of ``kit_dir`` on
    first use; one whose zygote died is replaced."""
    key = (fingerprint, tuple(sorted((k, v) for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES))))
    found = _evaluators.get(key)
    if found is None or found.process.poll() is not None:
        if found is not None:
            found.close()
        found = _evaluators[key] = WarmEvaluator(kit_dir, env)
    return found


def discard(warm: WarmEvaluator) -> None:
    """Stop ``warm`` and forget it (it failed; the next grading starts anew)."""
    for key, value in list(_evaluators.items()):
        if value is warm:
            del _evaluators[key]
    warm.close()


@atexit.register
def _close_all() -> None:
    for warm in _evaluators.values():
        warm.close()
    _evaluators.clear()


# ---------------------------------------------------------------- the zygote


def _evaluate(request: dict) -> None:
    """In a forked child: run pytest as ``request`` says, then exit."""
    code = 3
    try:
        os.setsid()  # its own process group: a timeout kills all it started
        die_with_parent()
        os.chdir(request["cwd"])
        fd = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ.clear()
        os.environ.update(request["env"])
        import pytest

        code = int(pytest.main(request["args"]))
    except BaseException:  # noqa: BLE001 - whatever happens, say it and exit
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def die_with_parent() -> None:
    """Linux: this process is killed when the thread that started it ends
    (an evaluation with its zygote, a batch's worker with the batch), so that
    a grader killed midway leaves nothing running."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve() -> None:
    """The zygote: import, say so, then fork one child per request line."""
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)
    # What is imported now lives as long as the zygote: out of the collector's
    # reach, a child's collections (pytest forces two at its end) skip it, and
    # its pages stay shared with the zygote instead of being copied on write.
    gc.freeze()
    replies = sys.stdout.buffer

    def reply(message: dict) -> None:
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    reply(READY)
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _evaluate(request)
        reply({"pid": pid})
        _, status = os.waitpid(pid, 0)
        reply({"exit": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    serve()
