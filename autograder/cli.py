"""``autograder``: the command line, a thin layer over the engine.

Exit codes: 0 when grading ran, whatever the score; 2 when it could not run
(any :class:`~autograder.errors.StopGrading`: unknown assignment, missing
course files, a broken hidden suite, a grader fault). A batch
exits 0 when every submission was graded and 1 when some could not be.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import __version__, options
from autograder.course import CourseError, known_assignments, load_assignment
from autograder.course_loop import add_commands as add_course_commands
from autograder.doctor import add_commands as add_doctor_commands
from autograder.engine import batch, gpu, sandbox
from autograder.engine.grade import GraderFault, grade_submission
from autograder.engine.record import grade_and_record, summary, write_json
from autograder.errors import StopGrading
from autograder.records.commands import add_commands as add_record_commands
from autograder.similarity import add_commands as add_similarity_commands


def _add_grade(commands) -> None:
    grade = commands.add_parser(
        "grade", help="grade one submitted notebook, or a folder of them",
        description="Grade a notebook, or every submission in a folder: nbgrader's "
                    "submitted/<student>/<assignment>/ layout or one .ipynb per student.",
    )
    grade.add_argument("submission", type=Path, help="a student's .ipynb file, or a folder of submissions")
    options.add_assignment(grade)
    options.add_course_dir(grade)
    grade.add_argument("--sandbox", choices=sandbox.MODES, default="auto",
                       help="confine the student's kernel: bwrap, none, or auto (bwrap where it works)")
    grade.add_argument("--gpus", default="auto",
                       help="GPUs the kernels may use: auto (every GPU nvidia-smi lists; none "
                            "without one), none, or indices such as 0,1")
    grade.add_argument("--per-gpu",
                       help="kernels sharing one GPU at once (default: as many as fit the "
                            "assignment's gpu_memory_gib in the card's memory)")
    grade.add_argument("--output-dir", type=Path,
                       help="write results.json, feedback/ and report.html here (one folder per "
                            "student for a batch; default for a batch: graded/<assignment>)")
    one = grade.add_argument_group("one notebook")
    one.add_argument("--json", type=Path, dest="json_path", help="also write results to this JSON file")
    one.add_argument("--student", default="", help="the student's name, recorded in the results")
    one.add_argument("--workdir", type=Path, help="keep the executed notebook and artifacts here")
    one.add_argument("--hide", type=Path, action="append", default=[],
                     help="another path the student's kernel must not see (repeatable)")
    many = grade.add_argument_group("a folder of submissions")
    many.add_argument("--workers", type=int, help="submissions graded at once (default: the number of cores)")
    many.add_argument("--force", action="store_true",
                      help="regrade submissions already graded with the same notebook and suite")
    many.add_argument("--cluster", metavar="ADDRESS",
                      help="grade on a Dask cluster: a scheduler's address (tcp://scheduler:8786) "
                           "or local:N for N worker processes here (needs keras-autograder[cluster])")
    many.add_argument("--shard", metavar="K/N",
                      help="grade only the K-th of N parts of the class (students sorted by name, "
                           "dealt round-robin); `autograder merge` joins the parts' output folders")
    limits = grade.add_argument_group("limits (override the assignment's assignment.toml)")
    limits.add_argument("--cell-timeout", type=int, help="seconds one cell may run")
    limits.add_argument("--notebook-timeout", type=int, help="seconds the whole notebook may run")
    limits.add_argument("--evaluation-timeout", type=int,
                        help="seconds the hidden suite may take on one submission's work")
    limits.add_argument("--memory-gib", type=float, help="memory of the kernel and its children, GiB")
    limits.add_argument("--max-processes", type=int, help="processes the kernel may have at once")
    limits.add_argument("--max-output-mib", type=float, help="total cell output kept, MiB")
    grade.set_defaults(run=_run_grade)


def _run_grade(args) -> int:
    assignment = load_assignment(
        args.assignment, args.course_dir,
        cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
        evaluation_timeout=args.evaluation_timeout, memory_gib=args.memory_gib,
        max_processes=args.max_processes, max_output_mib=args.max_output_mib,
    )
    if args.cluster:
        return _grade_folder(args, assignment, {})
    gpus = gpu.select_gpus(args.gpus, available=gpu.detect_gpus() if args.gpus != "none" else [])
    per_gpu = gpu.parse_per_gpu(args.per_gpu) if args.per_gpu else None
    capacity = gpu.capacities(gpus, per_gpu=per_gpu, limits=assignment.limits)
    if args.submission.is_dir() or args.shard:
        return _grade_folder(args, assignment, capacity)
    _preflight(assignment, args.sandbox, start_kernel=False)
    # One notebook takes the first GPU named, its share as if --per-gpu kernels shared it.
    allotted = gpus[0] if gpus else None
    grading = dict(
        workdir=args.workdir, sandbox_mode=args.sandbox, also_hidden=args.hide, allotted=allotted,
        gpu_memory_fraction=gpu.memory_share(capacity[allotted.index]) if allotted else 1.0,
    )
    if args.output_dir:
        result = grade_and_record(args.submission, assignment, args.output_dir,
                                  student=args.student, **grading)
    else:
        result = grade_submission(args.submission, assignment, **grading)
        result.student = args.student
    for note in result.staff_notes:
        print(note, file=sys.stderr)
    if args.json_path:
        write_json(result, args.json_path)
    print(summary(result))
    return 0


def _preflight(assignment, sandbox_mode: str, *, start_kernel: bool) -> None:
    """Stop with every reason this machine cannot grade ``assignment`` (see
    :func:`autograder.doctor.preflight`) before anything is graded."""
    from autograder.doctor import format_finding, preflight

    problems = preflight(assignment, sandbox_mode, start_kernel=start_kernel)
    if problems:
        raise GraderFault(f"this grader cannot grade {assignment.name!r}; nothing was graded.\n"
                          + "\n".join(format_finding(p) for p in problems))


def _grade_folder(args, assignment, gpu_capacity: dict[int, int]) -> int:
    if not args.submission.is_dir():
        raise CourseError(f"--cluster and --shard grade a folder of submissions; {args.submission} "
                          "is not a folder.")
    misplaced = [name for name in ("json_path", "workdir", "student") if getattr(args, name)]
    if misplaced:
        options = ", ".join("--" + n.replace("_path", "") for n in misplaced)
        raise CourseError(f"{options} grade(s) one notebook; {args.submission} is a folder. "
                          "A batch writes one folder per student under --output-dir.")
    shard = batch.parse_shard(args.shard) if args.shard else None
    if args.cluster:
        _check_cluster_options(args)
    output_dir = args.output_dir or Path("graded") / assignment.name
    if not args.cluster or args.cluster.startswith("local:"):  # this machine grades
        if args.sandbox != "none":
            _, warning = sandbox.choose(args.sandbox)  # say it once, not once per student
            if warning:
                print(warning, file=sys.stderr)
        # A grader that cannot grade stops here, before a class is marked "could not grade".
        # A remote cluster's workers check themselves as they grade (the one-notebook preflight).
        _preflight(assignment, args.sandbox, start_kernel=True)
    result = batch.grade_batch(
        args.submission, assignment, output_dir=output_dir, workers=args.workers,
        force=args.force, sandbox_mode=args.sandbox, gpu_capacity=gpu_capacity,
        cluster=args.cluster, cluster_gpus=args.gpus != "none", shard=shard,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    batch.write_summary(output_dir, result, assignment.name)
    print(result.text())
    print(f"results in {output_dir}/<student>/; class summary in {output_dir}/class_summary.html")
    return 1 if result.failed else 0


def _check_cluster_options(args) -> None:
    """A valid address, without the options of a local batch that a cluster decides for itself."""
    from autograder.engine.cluster import check_address

    check_address(args.cluster)
    if args.workers:
        raise CourseError("--workers sizes the local pool; with --cluster the cluster's workers "
                          "grade (local:N starts N of them).")
    if args.per_gpu or args.gpus not in ("auto", "none"):
        raise CourseError("with --cluster, --gpus is auto (a task asks for a GPU where the workers "
                          "offer one) or none, and --per-gpu is not given: each worker's "
                          "--resources GPU=P sets how many kernels share its GPU.")


def _add_merge(commands) -> None:
    merge = commands.add_parser(
        "merge", help="join the output folders of a class graded in shards",
        description="Copy every <student>/ folder of the output folders of `autograder grade "
                    "FOLDER --shard K/N` into one folder, then write batch_summary.json and the "
                    "class summary there, as one batch would. A student found in two folders "
                    "with different fingerprints is refused.",
    )
    merge.add_argument("--from", dest="sources", type=Path, nargs="+", action="extend",
                       required=True, metavar="OUT",
                       help="a shard's output folder (repeatable; several may follow one --from)")
    options.add_assignment(merge)
    merge.add_argument("--output-dir", type=Path, required=True, help="the merged output folder")
    merge.set_defaults(run=_run_merge)


def _run_merge(args) -> int:
    if args.assignment not in known_assignments():
        raise CourseError(f"Unknown assignment {args.assignment!r}: it has no hidden suite in this "
                          f"kit. Known assignments: {', '.join(known_assignments()) or 'none'}.")
    result = batch.merge_batches(args.sources, args.output_dir, args.assignment)
    batch.write_summary(args.output_dir, result, args.assignment)
    print(result.text())
    print(f"merged {len(args.sources)} folder(s) into {args.output_dir}")
    return 1 if result.failed else 0


def _add_check(commands) -> None:
    check = commands.add_parser(
        "check", help="self-check: run a notebook and list the cells that fail (grades nothing)",
        description="Run a notebook top to bottom in a fresh kernel, as the student saved it, "
                    "and list the cells that raise (failed self-checks, unfinished answers). "
                    "Needs no hidden suite: students run it before submitting.",
    )
    check.add_argument("notebook", type=Path, help="the notebook to run")
    check.add_argument("--cell-timeout", type=int, default=600, help="seconds one cell may run")
    check.set_defaults(run=_run_check)


def _run_check(args) -> int:
    from autograder.selfcheck import self_check

    report = self_check(args.notebook, cell_timeout=args.cell_timeout)
    print(report.text())
    return 0 if report.passed else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder", description="Grade Keras exercise notebooks with hidden suites."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_grade(commands)
    _add_check(commands)
    _add_merge(commands)
    add_record_commands(commands)
    add_similarity_commands(commands)
    add_doctor_commands(commands)
    add_course_commands(commands)
    listing = commands.add_parser("list", help="list the assignments that have hidden suites")
    listing.set_defaults(run=lambda args: print("\n".join(known_assignments())) or 0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except StopGrading as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
