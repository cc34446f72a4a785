"""``fedhex sweep ...`` and the commands that work on any study folder: ``submit``,
``task``, ``status``, ``retry`` and ``collect``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_study_commands"]


def _cmd_plan(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.sweep import SweepFolder, expand, load_spec

    spec, raw = load_spec(args.spec, small=args.small)
    tasks = expand(spec)
    SweepFolder(args.output).create(spec, raw, args.small, tasks)
    axes = ", ".join(tasks[0].axes) if tasks else "none"
    print(f"sweep {spec.name}: {len(tasks)} tasks in {args.output} (axes: {axes})")
    return 0


def _cmd_task(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.base import resolve_task_id
    from fedhex_hpc.studies.registry import open_study

    kind = open_study(args.study)
    kind.ready(Path(args.study))
    result = kind.run(Path(args.study), resolve_task_id(args.task), args.force)
    print(kind.summary_line(result))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.base import status_text
    from fedhex_hpc.studies.registry import open_study

    kind = open_study(args.study)
    folder = kind.folder(Path(args.study))
    print(status_text(folder, folder.meta()["name"], kind.task_ids(folder.path)))
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.registry import open_study

    print(open_study(args.study).collect(Path(args.study)))
    return 0


def _cmd_best(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.sweep import best

    lowest = True if args.min else False if args.max else None
    by = tuple(a for a in args.by.split(",") if a) if args.by else ()
    for pick in best(args.sweep, args.metric, lowest, by):
        groups = ", ".join(f"{axis}={pick[axis]}" for axis in by)
        print(
            (f"{groups}: " if groups else "")
            + f"task {pick['task_id']} {args.metric} {pick[args.metric]:.5g}  model {pick['model']}"
        )
    print(f"written: {Path(args.sweep) / 'best.json'}")
    return 0


def _scheduler(args: argparse.Namespace):
    from fedhex_hpc.schedulers import CondorScheduler, LocalScheduler, SlurmScheduler

    if args.scheduler == "local":
        return LocalScheduler(args.jobs, args.threads)
    return SlurmScheduler() if args.scheduler == "slurm" else CondorScheduler()


def _workload(folder: Path, only_unfinished: bool):
    """The tasks of any study folder still to run, and the commands that run and collect them.

    ``submit`` takes every task without a result; ``retry`` the failed and pending
    ones and those whose running mark is stale (not those running), clearing their
    failure marks.
    """
    from fedhex_hpc.schedulers import Workload
    from fedhex_hpc.studies.registry import open_study

    kind = open_study(folder)
    kind.ready(folder)
    study = kind.folder(folder)
    groups = study.ids_by_state(kind.task_ids(folder))
    if only_unfinished:
        stale = [i for i in groups["running"] if study.stale(i)]
        ids = sorted(groups["failed"] + groups["pending"] + stale)
        for i in groups["failed"]:
            study.state_file(i, "failed").unlink(missing_ok=True)
    else:
        ids = sorted(groups["failed"] + groups["pending"] + groups["running"])
    return Workload(folder, ids, ["task", str(folder)], ["collect", str(folder)])


def _submit(args: argparse.Namespace, only_unfinished: bool) -> int:
    from fedhex_hpc.errors import ConfigError
    from fedhex_hpc.schedulers import load_profile

    work = _workload(Path(args.study).resolve(), only_unfinished)
    if not work.task_ids:
        raise ConfigError(f"{work.folder}: no tasks to submit (all done or running)")
    profile = load_profile(args.profile)
    result = _scheduler(args).submit(work, profile, args.dry_run)
    for path in result.files:
        print(f"wrote {path}")
    for command in result.commands:
        print(("would run: " if args.dry_run else "ran: ") + " ".join(command))
    if result.job_ids:
        print(f"submitted {len(work.task_ids)} tasks: jobs {', '.join(result.job_ids)}")
    return 0


def _add_submit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="study folder (a sweep, a mixlearn study, ...)")
    parser.add_argument("--scheduler", choices=["local", "slurm", "condor"], default="local")
    parser.add_argument(
        "--profile", default="", help="site profile: a YAML file or a bundled name (test-cluster)"
    )
    parser.add_argument("--dry-run", action="store_true", help="write the job files only")
    parser.add_argument("--jobs", type=int, default=2, help="local: tasks at a time")
    parser.add_argument("--threads", type=int, default=1, help="local: threads per task")


def _add_folder_commands(commands: argparse._SubParsersAction) -> None:
    """``task``, ``status``, ``collect`` and ``retry`` (at top level and under ``sweep``)."""
    task = commands.add_parser("task", help="run one task of a study (default: the array index)")
    task.add_argument("study")
    task.add_argument("--task", type=int, default=None)
    task.add_argument("--force", action="store_true", help="rerun a finished task")
    task.set_defaults(func=_cmd_task)
    for name, func, text in (
        ("status", _cmd_status, "pending/running/done/failed counts"),
        ("collect", _cmd_collect, "merged table, summary and plots"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("study")
        parser.set_defaults(func=func)
    retry = commands.add_parser("retry", help="resubmit failed and missing tasks only")
    _add_submit_options(retry)
    retry.set_defaults(func=lambda args: _submit(args, only_unfinished=True))


def add_study_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex sweep`` and the study-folder commands."""
    sweep = sub.add_parser("sweep", help="parameter sweeps as job arrays")
    commands = sweep.add_subparsers(dest="sweep_command", required=True)

    plan = commands.add_parser("plan", help="expand a sweep spec into a plan folder")
    plan.add_argument("spec", help="sweep spec: a YAML file or a bundled name (dim2)")
    plan.add_argument("-o", "--output", required=True, type=Path)
    plan.add_argument("--small", action="store_true", help="the spec's small variant")
    plan.set_defaults(func=_cmd_plan)

    run = commands.add_parser("run", help="run one task (default: the array index)")
    run.add_argument("study")
    run.add_argument("--task", type=int, default=None)
    run.add_argument("--force", action="store_true", help="rerun a finished task")
    run.set_defaults(func=_cmd_task)

    best = commands.add_parser("best", help="the best run by a metric, per group; best.json")
    best.add_argument("sweep")
    best.add_argument("--metric", required=True, help="kl, test_log_likelihood, ...")
    direction = best.add_mutually_exclusive_group()
    direction.add_argument("--min", action="store_true", help="smallest value wins")
    direction.add_argument("--max", action="store_true", help="largest value wins")
    best.add_argument("--by", default="", help="comma-separated axes to group by")
    best.set_defaults(func=_cmd_best)
    _add_folder_commands(commands)

    _add_folder_commands(sub)
    submit = sub.add_parser("submit", help="submit every unfinished task of a study, then collect")
    _add_submit_options(submit)
    submit.set_defaults(func=lambda args: _submit(args, only_unfinished=False))
