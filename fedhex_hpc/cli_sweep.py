"""``fedhex sweep ...`` and ``fedhex submit``: plan, run, watch and collect studies."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_sweep_commands"]


def _cmd_plan(args: argparse.Namespace) -> int:
    from fedhex_hpc.sweeps import SweepFolder, expand, load_spec

    spec, raw = load_spec(args.spec, small=args.small)
    tasks = expand(spec)
    SweepFolder(args.output).create(spec, raw, args.small, tasks)
    axes = ", ".join(tasks[0].axes) if tasks else "none"
    print(f"sweep {spec.name}: {len(tasks)} tasks in {args.output} (axes: {axes})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from fedhex_hpc.sweeps import run_task

    result = run_task(args.sweep, args.task, args.force)
    print(
        f"task {result['task_id']} done: "
        + ", ".join(f"{k} {result[k]:.4g}" for k in ("kl", "test_log_likelihood") if k in result)
    )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from fedhex_hpc.sweeps import status

    print(status(args.sweep))
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from fedhex_hpc.sweeps import collect

    print(collect(args.sweep))
    print(f"\nmerged table: {args.sweep}/results.csv")
    return 0


def _scheduler(args: argparse.Namespace):
    from fedhex_hpc.schedulers import CondorScheduler, LocalScheduler, SlurmScheduler

    if args.scheduler == "local":
        return LocalScheduler(args.jobs, args.threads)
    return SlurmScheduler() if args.scheduler == "slurm" else CondorScheduler()


def _workload(folder: Path, only_unfinished: bool):
    """The tasks of a sweep folder or a mixlearn study folder, and how to run them."""
    from fedhex_hpc.errors import ConfigError
    from fedhex_hpc.schedulers import Workload

    if (folder / "study.json").is_file():
        from fedhex_hpc.mixlearn.folder import StudyFolder

        study = StudyFolder(folder)
        missing = [c for c in ("signal", "background") if not study.pool_file(c).is_file()]
        if missing:
            raise ConfigError(
                f"{folder}: no synthetic pools yet; run `fedhex mixlearn flows {folder}`"
            )
        ids = [i for i in range(len(study.plan())) if study.result(i) is None]
        return Workload(
            folder, ids, ["mixlearn", "run", str(folder)], ["mixlearn", "collect", str(folder)]
        )
    from fedhex_hpc.sweeps import SweepFolder, task_ids_by_state

    sweep = SweepFolder(folder)
    groups = task_ids_by_state(sweep)
    if only_unfinished:
        ids = sorted(groups["failed"] + groups["pending"])
        for i in groups["failed"]:
            sweep.file("state", f"{i}.failed").unlink(missing_ok=True)
    else:
        ids = sorted(i for ids in groups.values() for i in ids)
    return Workload(folder, ids, ["sweep", "run", str(folder)], ["sweep", "collect", str(folder)])


def _submit(args: argparse.Namespace, only_unfinished: bool) -> int:
    from fedhex_hpc.errors import ConfigError
    from fedhex_hpc.schedulers import load_profile

    work = _workload(Path(args.sweep).resolve(), only_unfinished)
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
    parser.add_argument("sweep", help="sweep folder")
    parser.add_argument("--scheduler", choices=["local", "slurm", "condor"], default="local")
    parser.add_argument("--profile", default="", help="site profile (hpc/profiles/*.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="write the job files only")
    parser.add_argument("--jobs", type=int, default=2, help="local: tasks at a time")
    parser.add_argument("--threads", type=int, default=1, help="local: threads per task")


def add_sweep_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex sweep`` and ``fedhex submit``."""
    sweep = sub.add_parser("sweep", help="parameter sweeps as job arrays")
    commands = sweep.add_subparsers(dest="sweep_command", required=True)

    plan = commands.add_parser("plan", help="expand a sweep spec into a plan folder")
    plan.add_argument("spec", type=Path)
    plan.add_argument("-o", "--output", required=True, type=Path)
    plan.add_argument("--small", action="store_true", help="the spec's small variant")
    plan.set_defaults(func=_cmd_plan)

    run = commands.add_parser("run", help="run one task (default: the array index)")
    run.add_argument("sweep")
    run.add_argument("--task", type=int, default=None)
    run.add_argument("--force", action="store_true", help="rerun a finished task")
    run.set_defaults(func=_cmd_run)

    for name, func, text in (
        ("status", _cmd_status, "pending/running/done/failed counts"),
        ("collect", _cmd_collect, "merged table, summary and plots"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("sweep")
        parser.set_defaults(func=func)

    retry = commands.add_parser("retry", help="resubmit failed and missing tasks only")
    _add_submit_options(retry)
    retry.set_defaults(func=lambda args: _submit(args, only_unfinished=True))

    submit = sub.add_parser(
        "submit", help="submit every task of a sweep (or mixlearn study), then collect"
    )
    _add_submit_options(submit)
    submit.set_defaults(func=lambda args: _submit(args, only_unfinished=False))
