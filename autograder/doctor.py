"""``autograder doctor``: can this machine grade?

Each check is a small function of a :class:`Context` that returns a
:class:`Finding`: its name, ``OK``, ``WARN`` or ``FAIL``, what it saw and,
unless OK, what to do about it. :data:`CHECKS` lists them once, in the order
they are printed; the datasets check returns one finding per dataset the
assignments load. The machine can grade when no finding is a FAIL.

A missing dataset is a WARN when every assignment is checked (the others can
still be graded) or when the loaders can still download it; it is a FAIL for
``--assignment A`` when A loads it and it cannot be had. The doctor itself
never downloads anything.

:func:`preflight` is the fast subset the grader runs before grading one
assignment: no kernel started and no Keras imported.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from autograder import __version__, options
from autograder.course import (
    PACKAGE_DIR,
    SUITES_DIR,
    Assignment,
    CourseError,
    Limits,
    default_course_dir,
    known_assignments,
    load_assignment,
)
from autograder.datasets import DatasetCorruptError, DatasetNotFoundError, _files, served
from autograder.engine import gpu, sandbox

OK, WARN, FAIL = "OK", "WARN", "FAIL"
MIN_PYTHON = (3, 11)
GIB = 1024**3
WORKDIR_GIB = 1.0
"""Free disk one submission's work directory may need: cifar10_cnn's kernel
exports about 0.6 GB of arrays, beside the executed notebook and the model."""
PROBE_TIMEOUT = 300
"""Seconds for importing Keras and its backend in a fresh interpreter."""
KERNEL_LIMITS = Limits(cell_timeout=60, notebook_timeout=120, startup_timeout=60)
KERNEL_MARKER = "autograder-doctor: kernel ran"
KERNEL_CELL = f"import sys, autograder\nprint({KERNEL_MARKER!r}, sys.version.split()[0])"

# Runs in a fresh interpreter, so that a Keras that crashes on import (a CPU
# without the instructions TensorFlow was built for) cannot take the doctor down.
KERAS_PROBE = r"""
import json
import keras
backend = keras.backend.backend()
gpus, version = [], "?"
if backend == "tensorflow":
    import tensorflow as tf
    version = tf.__version__
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
elif backend == "jax":
    import jax
    version = jax.__version__
    gpus = [str(d) for d in jax.devices() if d.platform == "gpu"]
elif backend == "torch":
    import torch
    version = torch.__version__
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
print(json.dumps({"keras": keras.__version__, "backend": backend,
                  "backend_version": version, "gpus": gpus}))
"""


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's table."""

    name: str
    status: str
    """``OK``, ``WARN`` (grading works, with a caveat) or ``FAIL`` (it does not)."""
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Context:
    """What the checks look at: the assignments to grade and how."""

    assignments: list[Assignment] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    """Assignments that cannot be loaded, and why."""
    sandbox_mode: str = "auto"
    strict: bool = False
    """One assignment was asked for: what it needs is required, not optional."""

    @classmethod
    def build(cls, assignment: str | None = None, course_dir: Path | None = None,
              sandbox_mode: str = "auto") -> Context:
        names = [assignment] if assignment else known_assignments()
        context = cls(sandbox_mode=sandbox_mode, strict=assignment is not None)
        for name in names:
            try:
                context.assignments.append(load_assignment(name, course_dir))
            except CourseError as exc:
                context.problems[name] = str(exc)
        return context

    @property
    def datasets(self) -> list[str]:
        """The datasets the assignments load, each once, in declaration order."""
        return list(dict.fromkeys(d for a in self.assignments for d in a.datasets))

    @functools.cached_property
    def keras(self) -> dict:
        """What a fresh interpreter reports about Keras (``error`` when it cannot import it)."""
        return keras_probe()


def keras_probe() -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        probe = subprocess.run([sys.executable, "-c", KERAS_PROBE], capture_output=True,
                               text=True, timeout=PROBE_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"importing Keras took longer than {PROBE_TIMEOUT} s"}
    lines = probe.stdout.strip().splitlines()
    if probe.returncode != 0 or not lines:
        tail = (probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"])[-1]
        return {"error": tail}
    return json.loads(lines[-1])


# ---------------------------------------------------------------- the checks


def check_python(ctx: Context) -> Finding:
    version = platform.python_version()
    if sys.version_info < MIN_PYTHON:
        return Finding("python", FAIL, f"Python {version} ({sys.executable}) is older than 3.11",
                       "create the virtual environment with Python 3.11 or newer: "
                       "python3.11 -m venv .venv && .venv/bin/pip install -e .")
    return Finding("python", OK, f"Python {version} ({sys.executable})")


def check_kit(ctx: Context) -> Finding:
    detail = f"keras-autograder {__version__} at {PACKAGE_DIR}"
    if ctx.problems:
        name, problem = next(iter(ctx.problems.items()))
        others = len(ctx.problems) - 1
        more = f" ({others} more assignment(s) cannot be loaded either)" if others else ""
        return Finding("kit", FAIL, f"{detail}; {problem}{more}",
                       "fix the assignment's files named above (assignment.toml, solutions/, "
                       "assignments/), or pick a known assignment: autograder list")
    if not ctx.assignments:
        return Finding("kit", FAIL, f"{detail}, but {SUITES_DIR} holds no hidden suite",
                       "grade from the instructor's checkout of the kit: the student wheel has no suites")
    suites = [check_suite(a) for a in ctx.assignments]
    missing = [s for s in suites if s.status != OK]
    if missing:
        return missing[0]
    names = ", ".join(a.name for a in ctx.assignments)
    return Finding("kit", OK, f"{detail}; hidden suites for {names}; course {ctx.assignments[0].course_dir}")


def check_suite(assignment: Assignment) -> Finding:
    """Whether ``assignment``'s hidden suite has its tests."""
    suites = sorted(assignment.suite_dir.glob("test_*.py"))
    if not suites:
        return Finding(f"suite {assignment.name}", FAIL,
                       f"{assignment.suite_dir} holds assignment.toml but no test_*.py",
                       f"restore autograder/suites/{assignment.name}/test_{assignment.name}.py "
                       "from the instructor's repository")
    return Finding(f"suite {assignment.name}", OK, f"{len(suites)} test file(s) in {assignment.suite_dir}")


def check_keras(ctx: Context) -> Finding:
    probe = ctx.keras
    if "error" in probe:
        return Finding("keras", FAIL, f"Keras does not import: {probe['error']}",
                       f"install the kit's dependencies into this environment: {sys.executable} -m pip "
                       "install -e . (it brings TensorFlow and Keras 3)")
    detail = f"Keras {probe['keras']}, backend {probe['backend']} {probe['backend_version']}"
    if not probe["keras"].startswith("3."):
        return Finding("keras", FAIL, f"{detail}: the suites need Keras 3",
                       f"{sys.executable} -m pip install 'keras>=3'")
    return Finding("keras", OK, detail)


def nvidia_gpus() -> list[str] | None:
    """The GPUs ``nvidia-smi -L`` lists, or ``None`` where there is no ``nvidia-smi``."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return []
    return [line.strip() for line in listing.stdout.splitlines() if line.startswith("GPU")]


def check_gpu(ctx: Context) -> Finding:
    driver = nvidia_gpus()
    seen = ctx.keras.get("gpus", [])
    backend = ctx.keras.get("backend", "the Keras backend")
    if seen:
        listed = f"; the driver lists {len(driver)}" if driver else ""
        return Finding("gpu", OK, f"{backend} sees {len(seen)} GPU(s): {', '.join(seen)}{listed}")
    if driver:
        return Finding("gpu", WARN, f"the driver lists {'; '.join(driver)}, but {backend} sees none: "
                                    "models train on the CPU",
                       "install the backend's GPU build, e.g. pip install 'tensorflow[and-cuda]', "
                       "and check that CUDA_VISIBLE_DEVICES does not hide the GPU")
    where = "no nvidia-smi" if driver is None else "nvidia-smi lists no GPU"
    return Finding("gpu", WARN, f"no GPU ({where}; {backend} sees none): models train on the CPU",
                   "nothing to do to grade: the time limits were set on 2 CPU cores; a GPU only makes "
                   "grading faster")


def bwrap_fix(problem: str, proc_sys: Path = Path("/proc/sys")) -> str:
    """How to let bubblewrap run, given why it does not (:func:`sandbox.bwrap_problem`)."""
    if shutil.which("bwrap") is None:
        return "install bubblewrap: apt-get install bubblewrap (Debian/Ubuntu) or dnf install bubblewrap"

    def sysctl(name: str) -> str | None:
        try:
            return (proc_sys / name.replace(".", "/")).read_text().strip()
        except OSError:
            return None

    if sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
        return ("Ubuntu 24.04's AppArmor forbids unprivileged user namespaces: "
                "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 "
                "(and put that line in /etc/sysctl.d/ to keep it)")
    if sysctl("kernel.unprivileged_userns_clone") == "0":
        return "user namespaces are switched off: sudo sysctl -w kernel.unprivileged_userns_clone=1"
    if sysctl("user.max_user_namespaces") == "0":
        return "user namespaces are switched off: sudo sysctl -w user.max_user_namespaces=15000"
    return ("in a container, allow it to create namespaces (docker run --security-opt seccomp=unconfined "
            "--security-opt apparmor=unconfined); otherwise grade with --sandbox none, knowing that "
            "students' code then runs unconfined")


def sandbox_finding(mode: str) -> Finding:
    if mode == "none":
        return Finding("sandbox", WARN, "--sandbox none: students' code runs unconfined and can read the "
                                        "hidden suites and use the network",
                       "grade with --sandbox auto or --sandbox bwrap")
    problem = sandbox.bwrap_problem()
    if problem is None:
        return Finding("sandbox", OK, f"{_bwrap_version()} creates namespaces: students' kernels run confined")
    if mode == "bwrap":
        return Finding("sandbox", FAIL, f"--sandbox bwrap, but {problem}", bwrap_fix(problem))
    return Finding("sandbox", WARN, f"{problem}; grading falls back to running students' code unconfined, "
                                    "where it can read the hidden suites", bwrap_fix(problem))


def _bwrap_version() -> str:
    version = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, timeout=30)
    return version.stdout.strip() or "bwrap"


def check_sandbox(ctx: Context) -> Finding:
    return sandbox_finding(ctx.sandbox_mode)


def _one_cell_notebook(source: str):
    """A notebook of one code cell."""
    import nbformat

    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])


def check_kernel(ctx: Context) -> Finding:
    """Start a python3 kernel the way the grader does and run one cell in it."""
    from autograder.engine import execute

    try:
        mode, _ = sandbox.choose(ctx.sandbox_mode)
    except sandbox.SandboxError as exc:
        return Finding("kernel", FAIL, f"not started: {exc}", "see the sandbox line")
    where = "inside bubblewrap" if mode == "bwrap" else "without a sandbox"
    notebook = _one_cell_notebook(KERNEL_CELL)
    with tempfile.TemporaryDirectory(prefix="ag-doctor-") as workdir:
        try:
            ran = execute.run(notebook, Path(workdir), KERNEL_LIMITS, sandbox_mode=mode)
        except execute.KernelStartError as exc:
            log = (Path(workdir) / "kernel.log").read_text(errors="replace").strip().splitlines()
            last = f"; the kernel's last words: {log[-1]}" if log else ""
            return Finding("kernel", FAIL, f"no kernel starts {where}: {exc}{last}",
                           f"{sys.executable} -m pip install ipykernel; then check that "
                           f"`{sys.executable} -m ipykernel_launcher --version` works")
    printed = "".join(o.get("text", "") for o in notebook.cells[0].get("outputs", []))
    if KERNEL_MARKER not in printed:
        why = "; ".join(ran.notes) or "it printed nothing"
        return Finding("kernel", FAIL, f"a kernel started {where} but could not run a cell: {why}",
                       "run `autograder grade` on a reference solution with --workdir and read kernel.log")
    seconds = ran.timings.get("kernel_start", 0.0)
    return Finding("kernel", OK, f"a python3 kernel started {where} in {seconds:.1f} s and imported the kit")


def check_kernel_gpu(ctx: Context) -> list[Finding]:
    """On a machine with GPUs: start a kernel allotted the first one, as the
    grader does (its device nodes in the sandbox, its environment), and read
    where its Keras backend says it computes. Nothing without a GPU."""
    from autograder.artifacts import RUNTIME_LOG, read_runtime
    from autograder.engine import execute, export

    found = gpu.detect_gpus()
    try:
        mode, _ = sandbox.choose(ctx.sandbox_mode)
    except sandbox.SandboxError:
        return []  # the kernel line says so
    if not found:
        return []
    allotted = found[0]
    notebook = _one_cell_notebook("import keras")
    with tempfile.TemporaryDirectory(prefix="ag-doctor-") as workdir:
        outdir = Path(workdir) / "artifacts"
        try:
            execute.run(notebook, Path(workdir), KERNEL_LIMITS, sandbox_mode=mode,
                        final_cell=export.export_cell({}, outdir), allotted=allotted,
                        gpu_memory_fraction=gpu.memory_share(gpu.default_per_gpu(
                            memory_mib=allotted.memory_mib, gpu_memory_gib=KERNEL_LIMITS.gpu_memory_gib)))
        except (execute.KernelStartError, gpu.GpuError) as exc:
            return [Finding("kernel gpu", FAIL, f"no kernel starts with GPU {allotted.index}: {exc}",
                            "grade with --gpus none until `autograder doctor` passes this line")]
        runtime = read_runtime(outdir / RUNTIME_LOG)
    name = f"GPU {allotted.index} ({allotted.name})"
    if runtime.device == "gpu":
        return [Finding("kernel gpu", OK, f"a kernel allotted {name} computes on it ({runtime.backend})")]
    said = f"its backend ({runtime.backend}) computes on the CPU" if runtime.device else \
        "it did not say where it computes"
    return [Finding("kernel gpu", WARN, f"a kernel allotted {name} does not use it: {said}",
                    "install the backend's GPU build where kernels run; meanwhile --gpus none "
                    "grades on the CPU without holding GPU slots")]


@contextlib.contextmanager
def _no_download() -> Iterator[None]:
    """Look for data files without downloading them, whatever AUTOGRADER_OFFLINE says."""
    before = os.environ.get(_files.OFFLINE_ENV)
    os.environ[_files.OFFLINE_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[_files.OFFLINE_ENV]
        else:
            os.environ[_files.OFFLINE_ENV] = before


def check_dataset(name: str, *, required: bool = False, download: bool = True) -> Finding:
    """Whether ``name``'s files are found and verified, as the loaders find them.

    ``download=False`` only looks. A dataset that is missing is a FAIL when
    ``required`` and it cannot be had (offline, no origin, or the download
    failed); otherwise a WARN.
    """
    label = f"dataset {name}"
    offline = _files.offline()
    try:
        with contextlib.nullcontext() if download else _no_download():
            files = served.dataset_files(name)
    except DatasetCorruptError as exc:
        lines = str(exc).splitlines()
        return Finding(label, FAIL, lines[0], lines[-1])
    except DatasetNotFoundError:
        return _missing(name, offline=offline, required=required, download=download)
    where = ", ".join(dict.fromkeys(str(p.parent) for p in files.values()))
    return Finding(label, OK, f"found in {where}, sha256 verified")


def _missing(name: str, *, offline: bool, required: bool, download: bool) -> Finding:
    entry = _files.dataset_entry(name)
    groups = served.FILE_GROUPS.get(name, [tuple(entry["files"])])
    wanted = " or ".join(" + ".join(group) for group in groups)
    fetchable = [g for g in groups if all(entry["files"][f].get("origins") for f in g)]
    origins = [entry["files"][f]["origins"][0] for g in fetchable[:1] for f in g]
    places = ", ".join(str(p) for p in _files.search_dirs())
    subdir = entry.get("subdir") or ""
    inside = f" (or its {subdir}/ folder)" if subdir else ""
    detail = f"{name} ({wanted}) is in none of: {places}{inside}"
    if fetchable and not offline and not download:
        size = sum(entry["files"][f].get("size") or 0 for f in fetchable[0]) / 1e6
        target = _files.keras_cache_dir() / subdir
        return Finding(f"dataset {name}", WARN, f"{detail}; not downloaded yet",
                       f"the loaders download it on first use (about {size:.0f} MB into {target}); "
                       f"to fetch it now: {sys.executable} -c "
                       f"'from autograder.datasets import {name}; {name}.load_data()'")
    if fetchable and not offline:
        detail += "; downloading it failed"
    elif offline:
        detail += f"; not downloaded: {_files.OFFLINE_ENV} is set"
    folder = f"a folder's {subdir}/" if subdir else "a folder"
    fix = f"copy {wanted} into {folder} and set {_files.DATA_DIR_ENV} to that folder (CI sets ../shared/datasets)"
    if origins:
        folders = list(dict.fromkeys(url.rsplit("/", 1)[0] + "/" for url in origins))
        shared = len(origins) > 1 and len(folders) == 1
        fix += f"; get {'them' if shared else 'it'} from {folders[0] if shared else ', '.join(origins)}"
    if offline and fetchable:
        fix += f"; or unset {_files.OFFLINE_ENV} to let the loaders download it"
    return Finding(f"dataset {name}", FAIL if required else WARN, detail, fix)


def check_datasets(ctx: Context) -> list[Finding]:
    return [check_dataset(name, required=ctx.strict, download=False) for name in ctx.datasets]


def check_memory(ctx: Context) -> Finding:
    limit = max((a.limits.memory_gib for a in ctx.assignments), default=Limits().memory_gib)
    memory = psutil.virtual_memory()
    free, total = memory.available / GIB, memory.total / GIB
    detail = f"{free:.1f} GiB of {total:.1f} GiB memory free; a kernel may use {limit:g} GiB"
    if free < limit:
        return Finding("memory", WARN, f"{detail}: a submission that uses its allowance would run the "
                                       "machine out of memory before the grader stops it",
                       "free memory, or lower memory_gib in assignment.toml (or --memory-gib), "
                       "and grade with --workers 1")
    return Finding("memory", OK, f"{detail}: room for {int(free // limit)} submission(s) at once (--workers)")


def check_disk(ctx: Context) -> Finding:
    tmp = Path(tempfile.gettempdir())
    free = shutil.disk_usage(tmp).free / GIB
    detail = f"{free:.1f} GiB free in {tmp}, where submissions run; each may need up to {WORKDIR_GIB:g} GiB"
    if free < WORKDIR_GIB:
        return Finding("disk", FAIL, detail, f"free space in {tmp}, or point TMPDIR at a larger disk")
    return Finding("disk", OK, detail)


Check = Callable[[Context], Finding | list[Finding]]
CHECKS: tuple[Check, ...] = (
    check_python, check_kit, check_keras, check_gpu, check_sandbox, check_kernel,
    check_kernel_gpu, check_datasets, check_memory, check_disk,
)
"""Every check, in the order of the table."""


def run_checks(ctx: Context) -> Iterator[Finding]:
    for check in CHECKS:
        found = check(ctx)
        yield from found if isinstance(found, list) else [found]


def can_grade(findings: list[Finding]) -> bool:
    return not any(f.status == FAIL for f in findings)


def check_plan(assignment: Assignment) -> Finding:
    """Whether ``assignment``'s hidden suite collects, with valid points."""
    from autograder.engine.evaluate import EvaluationError, collect_plan

    try:
        plan = collect_plan(assignment.suite_dir)
    except EvaluationError as exc:
        return Finding(f"checks {assignment.name}", FAIL, str(exc)[:1500],
                       f"fix autograder/suites/{assignment.name}/ until `python -m pytest --collect-only` "
                       "collects it")
    return Finding(f"checks {assignment.name}", OK,
                   f"{len(plan)} checks worth {sum(p.points for p in plan):g} points")


def preflight(assignment: Assignment | str, sandbox_mode: str = "auto", *,
              start_kernel: bool = False) -> list[Finding]:
    """The FAILs that stop ``assignment`` from being graded here: its suite
    missing, a dataset it loads missing (after a download, where allowed) or
    corrupt, or ``--sandbox bwrap`` where bubblewrap cannot run. Starts no
    kernel and imports no Keras, unless ``start_kernel`` (before a batch):
    then also the suite's checks are collected and a kernel is started as
    the grader starts it."""
    if isinstance(assignment, str):
        try:
            assignment = load_assignment(assignment)
        except CourseError as exc:
            return [Finding(f"suite {assignment}", FAIL, str(exc), "pick a known assignment: autograder list")]
    findings = [check_suite(assignment), sandbox_finding(sandbox_mode)]
    findings += [check_dataset(d, required=True) for d in assignment.datasets]
    if start_kernel and not any(f.status == FAIL for f in findings):
        findings += [check_plan(assignment),
                     check_kernel(Context([assignment], sandbox_mode=sandbox_mode, strict=True))]
    return [f for f in findings if f.status == FAIL]


# ---------------------------------------------------------------- command line


def add_commands(subparsers) -> None:
    """Add ``doctor`` to the command line's ``subparsers``."""
    doctor = subparsers.add_parser(
        "doctor", help="check that this machine can grade: Keras, data, sandbox, kernel, GPU, memory",
        description="Check that this machine can grade: Python, Keras and its backend, the datasets "
                    "(found and verified), bubblewrap, a kernel started as the grader starts it, GPUs, "
                    "memory and disk. Each line is OK, WARN or FAIL with the fix. Exit status 0 when "
                    "it can grade (warnings allowed), 1 when it cannot.",
    )
    options.add_assignment(doctor, required=False,
                           help="check only what this assignment needs (default: every assignment)")
    options.add_course_dir(doctor)
    doctor.add_argument("--sandbox", choices=sandbox.MODES, default="auto",
                        help="the sandbox grading will use (default: %(default)s)")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON, for scripts")
    doctor.set_defaults(run=run_doctor)


def format_finding(finding: Finding) -> str:
    line = f"{finding.status:<5} {finding.name}: {finding.detail}"
    return line + (f"\n      fix: {finding.fix}" if finding.fix and finding.status != OK else "")


def run_doctor(args: argparse.Namespace) -> int:
    course_dir = args.course_dir.resolve() if args.course_dir else default_course_dir()
    ctx = Context.build(args.assignment, course_dir, args.sandbox)
    findings = []
    for finding in run_checks(ctx):
        findings.append(finding)
        if not args.json:
            print(format_finding(finding), flush=True)
    ok = can_grade(findings)
    if args.json:
        print(json.dumps({"can_grade": ok, "findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        warnings = sum(f.status == WARN for f in findings)
        failures = len(findings) - warnings - sum(f.status == OK for f in findings)
        print(f"This machine can grade ({warnings} warning(s))." if ok
              else f"This machine cannot grade yet: {failures} FAIL(s) above, each with its fix.")
    return 0 if ok else 1
