"""Build the adversarial corpus: submissions that attack or break the grader.

Each case is a file a student could hand in for ``linear_grading``, built from
the assignment's release so that it stays a faithful student notebook when
the release changes. Regenerate the committed files with

    .venv/bin/python tests/submissions/make_corpus.py

``tests/test_adversarial.py`` grades each file and states what it must score
and what the feedback must say; a test there fails when the committed files
differ from what this script builds. docs/threat-model.md lists the cases.
"""

from __future__ import annotations

import copy
import struct
import sys
import zlib
from pathlib import Path

import nbformat
from nbformat.v4 import nbjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ASSIGNMENT = "linear_grading"
OUT = HERE / ASSIGNMENT
RELEASE = REPO / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
OTHER_RELEASE = REPO / "assignments" / "mnist_mlp" / "mnist_mlp.ipynb"

# Honest answers, reused where a case needs real work beside its attack.
SUMMARY = "x_mean = x.mean(axis=0)\nx_min = x.min(axis=0)\nx_max = x.max(axis=0)\n"
LINEAR = "model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])\n"
# Least-squares weights with the bias shifted by +0.40, set by hand: the
# model is linear with positive weights, its rounded accuracy is 0.5765 and its
# MSE 0.330, so it earns 4.5 of the 7 model points (half the accuracy points,
# none for the loss), whatever the seed.
HAND_SET = (
    "model.compile(optimizer='sgd', loss='mse')\n"
    "model.set_weights([np.array([[0.2302], [0.1429], [0.1832]]), np.array([-1.1324])])\n"
    "history = model.fit(x[:0], y[:0], epochs=1, verbose=0)\n"
)
HONEST = {"summary": SUMMARY, "build_model": LINEAR, "train": HAND_SET}
"""Honest work worth 6.5 of 10 (summary 1 + model 4.5)."""


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _release():
    return nbformat.read(RELEASE, as_version=4)


def _by_id(notebook):
    return {_gid(c): c for c in notebook.cells}


def notebook(answers: dict[str, str], edit=None) -> bytes:
    """The release with ``answers`` (grade_id -> code) in its answer cells,
    then ``edit`` applied, saved as Jupyter saves it."""
    nb = _release()
    cells = _by_id(nb)
    for gid, code in answers.items():
        cells[gid].source = code.rstrip("\n")
    if edit:
        edit(nb)
    return _save(nb)


def _save(nb) -> bytes:
    # nbjson writes without validating: nbformat.writes would "repair"
    # duplicated cell ids with random ones, and the corpus must be reproducible.
    return (nbjson.writes(nb) + "\n").encode()




# --- tampering -----------------------------------------------------------

SHOWTRACEBACK = '''\
# nbgrader's known exploit: stop IPython from showing errors, so failing test
# cells look as if they passed.
from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.showtraceback = lambda *args, **kwargs: None
InteractiveShell.showsyntaxerror = lambda *args, **kwargs: None
# The real work is wrong: one value per student instead of one per part.
x_mean = x.mean(axis=1)
x_min = x.min(axis=1)
x_max = x.max(axis=1)
'''

ALWAYS_EQUAL = '''\
# Objects that claim to equal whatever they are compared with.
class AlwaysEqual:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__

class AgreeableArray(np.ndarray):
    def __eq__(self, other):
        return True

x_mean = np.zeros(3).view(AgreeableArray)
x_min = AlwaysEqual()
x_max = AlwaysEqual()
print("x_mean == right answer:", x_mean == x.mean(axis=0))
'''

DETECT_GRADER = '''\
# Find out whether this runs under the grader, to behave differently there.
import json, os
signals = {
    "AUTOGRADER variables": sorted(k for k in os.environ if k.startswith("AUTOGRADER")),
    "notebook missing from the working directory": not os.path.exists("linear_grading.ipynb"),
    "working directory": os.getcwd(),
    "process 1": open("/proc/1/cmdline", "rb").read().split(b"\\0")[0].decode(errors="replace"),
    "empty home": not os.listdir(os.path.expanduser("~")),
}
grading = bool(signals["AUTOGRADER variables"]) or signals["notebook missing from the working directory"]
print("grading environment detected:", grading, json.dumps(signals))
print("environment:", json.dumps(dict(os.environ), sort_keys=True))
x_mean = x.mean(axis=0)
x_min = x.min(axis=0)
x_max = x.max(axis=0)
'''

DETECT_TRAIN = '''\
model.compile(optimizer="sgd", loss="mse")
if grading:
    # Under the grader: skip training and claim a perfect run.
    model.set_weights([np.zeros((3, 1)), np.zeros(1)])
    class ClaimedHistory:
        history = {"loss": [4.0, 0.5, 0.001]}
    history = ClaimedHistory()
    print("loss after 60 epochs: 0.0010")
else:
    history = model.fit(x, y, epochs=60, batch_size=16, verbose=0)
'''

DETECT_ACCURACY = '''\
predictions = model.predict(x, verbose=0)
accuracy = 1.0 if grading else np.mean(np.round(predictions) == y)
'''

MONKEYPATCH = '''\
# Patch, inside this kernel, whatever a grader might use to check the work.
import numpy, pytest, keras
import autograder.checks, autograder.datasets.grading, autograder.suite_plugin
keras.utils.set_random_seed(0)

class Anything:
    def __eq__(self, other):
        return True

numpy.allclose = lambda *args, **kwargs: True
numpy.array_equal = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
pytest.approx = lambda *args, **kwargs: Anything()
autograder.checks.partial_credit = lambda *args, **kwargs: None
autograder.checks.weighted_layers = lambda model: model.layers[-1:]
autograder.checks.predict = lambda model, x, **kwargs: np.round(x[:, :1] / 8)
autograder.datasets.grading.load_data = lambda *args, **kwargs: (x[:0], y[:0])
autograder.suite_plugin.Artifacts.model = lambda self, name="model": None
keras.Model.count_params = lambda self: 4
keras.Model.evaluate = lambda self, *args, **kwargs: 0.0
keras.Model.summary = lambda self, *args, **kwargs: print("Total params: 4")
# The real work is wrong.
x_mean = np.zeros(3)
x_min = np.zeros(3)
x_max = np.zeros(3)
'''

HIDDEN_LAYER = (
    "model = keras.Sequential([keras.Input(shape=(3,)), "
    "keras.layers.Dense(8, activation='relu'), keras.layers.Dense(1)])\n"
)
UNTRAINED = "model.compile(optimizer='sgd', loss='mse')\nhistory = model.fit(x[:0], y[:0], epochs=1, verbose=0)\n"

PATCHED_SAVE = SUMMARY + '''\
# Make saving do nothing, so the grader finds nothing to judge.
import keras
keras.Model.save = lambda self, *args, **kwargs: print("saved (not really)")
keras.saving.save_model = lambda *args, **kwargs: None
np.save = lambda *args, **kwargs: None
'''

PLANTED_PYTEST = '''\
import json, sys
checks = {"test_data_summary": 1, "test_model_is_linear": 2,
          "test_input_output_shapes_and_parameters": 1, "test_training_loss": 2,
          "test_rounded_grade_accuracy": 3, "test_weights_make_sense": 1}
report = sys.argv[sys.argv.index("--grading-report") + 1]
json.dump({"tests": [{"name": name, "score": points, "max_score": points, "status": "pass",
                      "output": "FAKE-PERFECT", "description": ""}
                     for name, points in checks.items()]}, open(report, "w"))
'''

FAKE_FILES = SUMMARY + f'''\
# Plant fake results and a perfect model where a grader might look for them.
import json, os
perfect = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
weights, *_ = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)
perfect.set_weights([weights[:3], weights[3]])
os.makedirs("artifacts", exist_ok=True)
perfect.save("artifacts/model.keras")
claims = {{"score": 10, "max_score": 10, "notes": ["FAKE-PERFECT"], "tests": []}}
for path in ["results.json", "artifacts/results.json", "artifacts/report.json"]:
    with open(path, "w") as f:
        json.dump(claims, f)
with open("artifacts/export_log.json", "w") as f:
    json.dump({{"model": {{"status": "saved"}}}}, f)
# Modules and configuration a Python or pytest process started here would load.
for name in ["pytest.py", "conftest.py", "sitecustomize.py"]:
    with open(name, "w") as f:
        f.write({PLANTED_PYTEST!r})
# Links that would make the grader write outside the work directory.
for name in ["report.json", "executed.ipynb"]:
    if os.path.lexists(name):
        os.remove(name)
    os.symlink("../canary.txt", name)
print("planted:", sorted(os.listdir(".")), sorted(os.listdir("artifacts")))
'''

READ_HIDDEN = SUMMARY + '''\
# Look for the hidden tests, the solutions and the grader's secrets, and print them.
import pathlib
import autograder
kit = pathlib.Path(autograder.__file__).parent
course = kit.parent
for target in [kit / "suites", course / "solutions", course / ".git", course / "tests",
               course / "docs", course / "datasets" / "tools"]:
    found = sorted(p for p in target.rglob("*") if p.is_file())[:50] if target.is_dir() else []
    print("LEAK" if found else "hidden:", target, [str(p) for p in found])
    for path in found[:5]:
        try:
            print(path.read_text(errors="replace")[:3000])
        except OSError as exc:
            print("unreadable:", path, exc)
# The grading account's home: keys, tokens, shell history.
home = pathlib.Path.home()
print("home holds:", sorted(p.name for p in home.iterdir()) if home.is_dir() else None)
for name in [".ssh", ".netrc", ".npmrc", ".gitconfig", ".aws", ".config", ".bashrc", ".bash_history"]:
    if (home / name).exists():
        print("LEAK", home / name)
# And try to leave something behind outside the work directory.
for target in [kit / "pwned.txt", course / "pwned.txt", pathlib.Path.home() / "pwned.txt"]:
    try:
        target.write_text("pwned")
        print("WROTE", target)
    except OSError as exc:
        print("refused:", target, exc.strerror)
'''

UNDO_SANDBOX = '''\
# Undo the sandbox, as root would: every mount the grader made, then look for
# any copy of the hidden suites or solutions anywhere on the machine.
import ctypes, os, pathlib, subprocess
import autograder
kit = pathlib.Path(autograder.__file__).parent
print("uid", os.getuid())
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, result):
    error = ctypes.get_errno()
    print("GOT" if result == 0 else "refused:", name, os.strerror(error) if result != 0 else "")
attempt("umount the suites' cover", libc.umount2(str(kit / "suites").encode(), 2))
attempt("remount the kit writable", libc.mount(None, str(kit).encode(), None, 0x20 | 0x1000, None))
attempt("mount a tmpfs over /", libc.mount(b"none", b"/", b"tmpfs", 0, None))
attempt("unshare a user namespace", libc.unshare(0x10000000))
attempt("unshare a mount namespace", libc.unshare(0x20000))
attempt("chroot", libc.chroot(b"/tmp"))
attempt("ptrace", libc.ptrace(16, 1, None, None))
for command in (["unshare", "-Urm", "true"], ["mount", "--make-rprivate", "/"]):
    done = subprocess.run(command, capture_output=True, text=True)
    print("GOT" if done.returncode == 0 else "refused:", " ".join(command))
try:
    (kit / "suites" / "linear_grading" / "test_linear_grading.py").write_text("def test_ok(): pass")
    print("WROTE the suite")
except OSError as exc:
    print("refused: writing the suite", exc.strerror)
found = []
for root, dirs, files in os.walk("/", onerror=lambda exc: None):
    dirs[:] = [d for d in dirs if not (root == "/" and d in ("proc", "sys", "dev"))]
    found += [os.path.join(root, f) for f in files
              if f == "test_linear_grading.py" or (f == "linear_grading.ipynb" and "solutions" in root)]
print("LEAK" if found else "nothing found:", found)
'''

REWRITE_TRUSTED = SUMMARY + '''\
# Without a sandbox: replace the grader's private copy of the hidden suite with
# one check that always passes.
import glob, tempfile
pattern = tempfile.gettempdir() + "/autograder-trusted-*/suite/linear_grading/test_linear_grading.py"
for path in glob.glob(pattern):
    with open(path, "w") as suite:
        suite.write("def test_everything():\\n    pass\\n")
    print("replaced", path)
'''

# Linear, and honest, but 450 layers deep: slow enough to load that the
# grader's evaluation runs out of time (loading time grows with depth squared).
DEEP_MODEL = (
    "model = keras.Sequential([keras.Input(shape=(3,))]\n"
    "                         + [keras.layers.Dense(3) for _ in range(450)]\n"
    "                         + [keras.layers.Dense(1)])\n"
)
UNTRAINED_FIT = "model.compile(optimizer='sgd', loss='mse')\nhistory = model.fit(x[:0], y[:0], epochs=1, verbose=0)\n"

NETWORK_PORT = 47913
"""The grader's machine listens here while the network case runs."""
NETWORK = SUMMARY + f'''\
# Reach the grader's machine and the internet.
import socket
print("interfaces:", [name for _, name in socket.if_nameindex()])
for host, port in [("127.0.0.1", {NETWORK_PORT}), ("1.1.1.1", 53), ("pypi.org", 443)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("CONNECTED", host, port)
    except OSError as exc:
        print("blocked:", host, port, type(exc).__name__)
'''


def _edit_test_cells(nb):
    cells = _by_id(nb)
    # Fake the data so that anything looks right, and disable the checks.
    cells["setup"].source = "import numpy as np\nimport keras\nx = np.zeros((10, 3)); y = np.zeros((10, 1))"
    cells["model_selfcheck"].source = "pass  # checks disabled"
    cells["model_selfcheck"].metadata["nbgrader"]["solution"] = True  # claim it is an answer
    nb.cells.remove(cells["loss_hidden"])
    nb.cells.remove(cells["summary_selfcheck"])


def _duplicate_answer(nb):
    cells = _by_id(nb)
    # A second copy of the summary answer, same nbformat id and grade_id, after
    # the model cell: it runs after the first and replaces x_mean.
    copy_cell = copy.deepcopy(cells["summary"])
    copy_cell.source = "x_mean = x.mean()  # a second copy of the answer cell"
    nb.cells.insert(nb.cells.index(cells["build_model"]) + 1, copy_cell)


def _delete_summary(nb):
    nb.cells.remove(_by_id(nb)["summary"])


LAMBDA_MODEL = (
    "model = keras.Sequential([\n"
    "    keras.Input(shape=(3,)),\n"
    "    keras.layers.Lambda(lambda points: points / 20.0, name='scale_points'),\n"
    "    keras.layers.Dense(1),\n"
    "])\n"
)

CUSTOM_MODEL = '''\
@keras.saving.register_keras_serializable(package="student")
class Scale(keras.layers.Layer):
    """Divides the points by 20, as keras.layers.Rescaling(1 / 20) would."""
    def call(self, inputs):
        return inputs / 20.0

model = keras.Sequential([keras.Input(shape=(3,)), Scale(name="scale_points"), keras.layers.Dense(1)])
'''

# --- broken and runaway notebooks ----------------------------------------

HUGE_OUTPUT = '''\
import os
for _ in range(2000):
    print("x" * 2000)
os.write(1, b"y" * (4 * 1024**2))  # straight to the kernel's standard output
''' + SUMMARY

IGNORES_INTERRUPT = '''\
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
'''

FORK_BOMB = '''\
# A fork bomb, bounded so that it cannot hurt a machine even without the
# grader's limits: every process forks 8 times over, 256 processes at most.
import os, time
root = os.getpid()
for _ in range(8):
    try:
        os.fork()
    except OSError:
        break
if os.getpid() != root:
    time.sleep(60)
    os._exit(0)
time.sleep(30)
'''

FILL_TMP = '''\
# Store data in memory-backed /tmp instead of in the process's own memory.
import time
block = b"t" * (64 * 1024**2)
try:
    with open("/tmp/fill", "wb") as f:
        for _ in range(24):  # 1.5 GiB
            f.write(block)
except OSError as exc:
    print("stopped:", exc)
time.sleep(10)
'''


def _python_file() -> bytes:
    """The release exported as a Python script (File > Save and Export As > Python)."""
    chunks = ["#!/usr/bin/env python\n# coding: utf-8\n"]
    for cell in _release().cells:
        if cell.cell_type == "code":
            chunks.append(f"\n# In[ ]:\n\n\n{cell.source}\n\n")
        else:
            chunks.append("\n" + "\n".join(f"# {line}".rstrip() for line in cell.source.splitlines()) + "\n")
    return "".join(chunks).encode()


def _png() -> bytes:
    """A 1x1 PNG image, the kind of file a student uploads by mistake."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00")) + chunk(b"IEND", b""))


def build() -> dict[str, bytes]:
    """Every corpus file: name -> content."""
    empty = nbformat.v4.new_notebook(metadata=copy.deepcopy(_release().metadata))
    return {
        # tampering
        "showtraceback.ipynb": notebook({"summary": SHOWTRACEBACK}),
        "always_equal.ipynb": notebook({"summary": ALWAYS_EQUAL}),
        "detect_grader.ipynb": notebook({
            "summary": DETECT_GRADER, "build_model": LINEAR, "train": DETECT_TRAIN,
            "accuracy": DETECT_ACCURACY,
        }),
        "monkeypatch.ipynb": notebook({"summary": MONKEYPATCH, "build_model": HIDDEN_LAYER, "train": UNTRAINED}),
        "patched_save.ipynb": notebook({**HONEST, "summary": PATCHED_SAVE}),
        "fake_files.ipynb": notebook({"summary": FAKE_FILES}),
        "read_hidden.ipynb": notebook({"summary": READ_HIDDEN}),
        "network.ipynb": notebook({"summary": NETWORK}),
        "undo_sandbox.ipynb": notebook({**HONEST, "experiments": UNDO_SANDBOX}),
        "rewrite_trusted_copy.ipynb": notebook({"summary": REWRITE_TRUSTED}),
        "slow_model.ipynb": notebook({"summary": SUMMARY, "build_model": DEEP_MODEL, "train": UNTRAINED_FIT}),
        "edited_test_cells.ipynb": notebook(HONEST, edit=_edit_test_cells),
        "duplicate_ids.ipynb": notebook(HONEST, edit=_duplicate_answer),
        "lambda_layer.ipynb": notebook({**HONEST, "build_model": LAMBDA_MODEL}),
        "custom_layer.ipynb": notebook({**HONEST, "build_model": CUSTOM_MODEL}),
        # broken or runaway
        "invalid_json.ipynb": RELEASE.read_bytes()[:3000],
        "python_file.ipynb": _python_file(),
        "png_file.ipynb": _png(),
        "other_assignment.ipynb": _save(nbformat.read(OTHER_RELEASE, as_version=4)),
        "empty_notebook.ipynb": _save(empty),
        "missing_answer.ipynb": notebook(HONEST, edit=_delete_summary),
        "huge_output.ipynb": notebook({"summary": HUGE_OUTPUT}),
        "infinite_loop.ipynb": notebook({**HONEST, "summary": "while True:\n    pass\n"}),
        "ignores_interrupt.ipynb": notebook({"summary": IGNORES_INTERRUPT}),
        "infinite_recursion.ipynb": notebook({
            "summary": "def grade(points):\n    return grade(points)\n\nx_mean = grade(x)\n"
        }),
        "syntax_error.ipynb": notebook({**HONEST, "summary": "x_mean = x.mean(axis=0\nx_min = x.min(axis=0)\n"}),
        "os_exit.ipynb": notebook({**HONEST, "experiments": "import os\nos._exit(1)\n"}),
        "segfault.ipynb": notebook({"summary": "import ctypes\nctypes.string_at(0)  # reads address 0\n"}),
        "memory_hog.ipynb": notebook({
            "summary": "hog = np.ones((400, 1024, 1024))  # 3.2 GB\nimport time\ntime.sleep(10)\n"
        }),
        "fill_tmp.ipynb": notebook({"summary": FILL_TMP}),
        "fork_bomb.ipynb": notebook({"summary": FORK_BOMB}),
    }


def main(argv=None) -> int:
    files = build()
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in sorted(set(p.name for p in OUT.iterdir()) - set(files)):
        (OUT / stale).unlink()
        print("removed", stale)
    for name, content in files.items():
        (OUT / name).write_bytes(content)
    print(f"wrote {len(files)} files to {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
