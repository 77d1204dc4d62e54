"""The autograder zip for a Gradescope programming assignment.

Gradescope's specification (https://gradescope-autograders.readthedocs.io/en/latest/specs/)
asks for a zip with ``setup.sh`` and ``run_autograder`` at its root; the zip
is unpacked into ``/autograder/source``, ``setup.sh`` runs once when the
image is built, and ``run_autograder`` (copied to ``/autograder/run_autograder``)
runs for every submission, with the student's files in
``/autograder/submission`` and the result expected in
``/autograder/results/results.json``.

The zip holds the kit's source with the assignment's hidden suite, its
source notebook and its release (Gradescope's servers are trusted and
students never see the zip), the dataset manifest and ``grading.npz``. It
never holds version control, virtual environments, build outputs, other
assignments or any other dataset file: ``setup.sh`` downloads the datasets
the assignment loads into the image, once.
"""

from __future__ import annotations

import io
import re
import shlex
import stat
import zipfile
from pathlib import Path

from autograder.course import PACKAGE_DIR, default_course_dir, load_assignment
from autograder.atomic import write_atomic
from autograder.records.gradescope import DEFAULT_VISIBILITY, VISIBILITIES

KIT_DIR = PACKAGE_DIR.parent
KIT_FILES = ("pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "LICENSE.md")
"""Files at the top of the kit that installing it needs (pyproject names the README)."""
BUNDLED_DATA = ("datasets/manifest.json", "datasets/grading.npz")
"""The only dataset files a bundle carries: what the package ``autograder.bundled_data`` ships."""
SKIPPED_DIRS = {"__pycache__", "build", "dist", "node_modules", "venv"}
"""Never bundled, wherever they sit (hidden folders such as .git and .venv never are either)."""
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
SANDBOXES = ("auto", "bwrap", "none")

_EXECUTABLE = 0o755
_REGULAR = 0o644
_DATASET_IMPORT = re.compile(r"from\s+autograder\.datasets\s+import\s+([\w ,]+)|autograder\.datasets\.(\w+)")


def _walk(folder: Path, prefix: str, *, skip_dirs: set[Path] = frozenset()) -> dict[str, Path]:
    """Regular files under ``folder`` as ``{prefix/relative path: path}``,
    leaving out hidden entries, caches, build outputs and ``skip_dirs``."""
    members = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") or part in SKIPPED_DIRS or part.endswith(SKIPPED_SUFFIXES)
               for part in relative.parts):
            continue
        if any(path == s or s in path.parents for s in skip_dirs):
            continue
        if path.is_file() and not path.is_symlink():
            members[f"{prefix}/{relative.as_posix()}"] = path
    return members


def bundle_members(assignment: str, *, course_dir: Path | None = None) -> dict[str, Path]:
    """What the zip holds besides the two scripts: ``{name in zip: file}``.

    The kit (its ``pyproject.toml``, the ``autograder`` package with only this
    assignment's hidden suite, the dataset manifest and ``grading.npz``) and
    the course's ``solutions/NAME`` and ``assignments/NAME``. Raises
    :class:`~autograder.course.CourseError` for an unknown or incomplete
    assignment.
    """
    spec = load_assignment(assignment, course_dir)
    other_suites = {p for p in spec.suite_dir.parent.iterdir() if p.is_dir() and p != spec.suite_dir}
    members = {name: KIT_DIR / name for name in KIT_FILES if (KIT_DIR / name).is_file()}
    members.update({name: KIT_DIR / name for name in BUNDLED_DATA if (KIT_DIR / name).is_file()})
    members.update(_walk(PACKAGE_DIR, "autograder", skip_dirs=other_suites))
    members.update(_walk(spec.source_notebook.parent, f"solutions/{assignment}"))
    members.update(_walk(spec.release_dir, f"assignments/{assignment}"))
    return members


def datasets_used(assignment: str, *, course_dir: Path | None = None) -> list[str]:
    """The kit's dataset loaders that the assignment's suite or notebook imports."""
    spec = load_assignment(assignment, course_dir)
    loaders = {p.stem for p in (PACKAGE_DIR / "datasets").glob("*.py") if not p.stem.startswith("_")}
    text = spec.source_notebook.read_text(encoding="utf-8")
    text += "".join(p.read_text(encoding="utf-8") for p in sorted(spec.suite_dir.glob("*.py")))
    found = set()
    for names, attribute in _DATASET_IMPORT.findall(text):
        found.update(n.strip() for n in (names.split(",") if names else [attribute]))
    return sorted(found & loaders)


def setup_script(*, assignment: str, datasets: list[str], sandbox: str = "auto") -> str:
    """``setup.sh``: Python 3.11 or newer, bubblewrap for the sandbox, a
    virtual environment with the kit installed from the bundled source, the
    datasets the assignment loads downloaded into the image, and last
    ``autograder doctor``'s table in the build log (its FAILs do not stop the
    build: the image may differ from the container that grades)."""
    prefetch = "\n".join(
        f'"$VENV/bin/python" -c {shlex.quote(f"from autograder.datasets import {d}; {d}.load_data()")} '
        f'|| echo "setup.sh: could not download {d} now; grading will try again"'
        for d in datasets
    )
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
ROOT="${{GRADESCOPE_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"
export DEBIAN_FRONTEND=noninteractive

apt-get update -q
# bubblewrap confines the student's kernel where the container allows it.
apt-get install -y -q python3 python3-venv python3-pip bubblewrap
PYTHON=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    apt-get install -y -q python3.11 python3.11-venv
    PYTHON=python3.11
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# Editable: the hidden suites stay in $SOURCE, where the kit looks for them
# (a wheel of the kit never contains them).
"$VENV/bin/pip" install --quiet -e "$SOURCE"

# The datasets this assignment loads, downloaded once into the image's Keras cache.
{prefetch or ": no dataset to download"}

# Whether this image can grade: OK / WARN / FAIL per check, each with its fix.
"$VENV/bin/autograder" doctor --assignment {shlex.quote(assignment)} --sandbox {sandbox} \\
    || echo "setup.sh: autograder doctor reported a FAIL above; fix it before students submit"
"""


def run_script(*, assignment: str, sandbox: str = "auto", visibility: str = DEFAULT_VISIBILITY) -> str:
    """``run_autograder``: grade ``/autograder/submission/*.ipynb`` as
    ``assignment`` and write ``/autograder/results/results.json``.

    ``GRADESCOPE_ROOT`` moves ``/autograder`` and ``AUTOGRADER_PYTHON`` picks
    the interpreter (both only for tests).
    """
    if sandbox not in SANDBOXES:
        raise ValueError(f"sandbox {sandbox!r} is not one of {', '.join(SANDBOXES)}")
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r} is not one of Gradescope's: {', '.join(VISIBILITIES)}")
    return f"""#!/usr/bin/env bash
# Gradescope runs this for every submission. It always writes
# $ROOT/results/results.json, with a message when nothing could be graded.
set -uo pipefail
ROOT="${{GRADESCOPE_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
export AUTOGRADER_COURSE_DIR="$ROOT/source"
export PYTHONPATH="$ROOT/source${{PYTHONPATH:+:$PYTHONPATH}}"
export TF_CPP_MIN_LOG_LEVEL=3
if [ ! -x "$PYTHON" ]; then
    mkdir -p "$ROOT/results"
    cat > "$ROOT/results/results.json" <<'JSON'
{{"score": 0.0, "output_format": "text", "output": "The autograder is not set up, so your notebook was not graded. This is a problem on the course's side: please tell course staff, then submit again."}}
JSON
    echo "run_autograder: no Python at $PYTHON: did setup.sh fail? See the image build log."
    exit 1
fi
cd "$ROOT/source"
exec "$PYTHON" -m autograder.records.gradescope --root "$ROOT" \\
    --assignment {shlex.quote(assignment)} --sandbox {sandbox} --visibility {visibility}
"""


def to_bundle(*, assignment: str, course_dir: Path | None = None, sandbox: str = "auto",
              visibility: str = DEFAULT_VISIBILITY) -> bytes:
    """The zip's bytes. Entries are sorted and dated 1980-01-01, so the same
    sources give the same zip; the two scripts are executable."""
    course_dir = Path(course_dir).resolve() if course_dir else default_course_dir()
    scripts = {
        "setup.sh": setup_script(assignment=assignment, sandbox=sandbox,
                                 datasets=datasets_used(assignment, course_dir=course_dir)),
        "run_autograder": run_script(assignment=assignment, sandbox=sandbox, visibility=visibility),
    }
    members = bundle_members(assignment, course_dir=course_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted({*members, *scripts}):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = _EXECUTABLE if name in scripts else _REGULAR
            info.external_attr = (stat.S_IFREG | mode) << 16
            data = scripts[name].encode() if name in scripts else members[name].read_bytes()
            archive.writestr(info, data)
    return buffer.getvalue()


def write_bundle(path: Path, *, assignment: str, course_dir: Path | None = None,
                 sandbox: str = "auto", visibility: str = DEFAULT_VISIBILITY) -> Path:
    """Write :func:`to_bundle` to ``path`` atomically and return ``path``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the zip's file name, e.g. {path / 'autograder.zip'}")
    write_atomic(path, to_bundle(assignment=assignment, course_dir=course_dir,
                                 sandbox=sandbox, visibility=visibility))
    return path
