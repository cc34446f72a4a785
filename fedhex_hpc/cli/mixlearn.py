"""``fedhex mixlearn ...``: classifiers trained on mixes of genuine and flow-made events."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_mixlearn_commands"]


def _cmd_plan(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.mixlearn import plan_study

    rows = plan_study(args.spec, args.output, small=args.small, dataset=args.dataset)
    print(f"mixlearn study in {args.output}: {rows} classifier rows (training.plan.csv)")
    return 0


def _cmd_flows(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.mixlearn import run_flows

    classes = (args.cls,) if args.cls else ("signal", "background")
    print(run_flows(args.study, classes))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.base import resolve_task_id
    from fedhex_hpc.studies.mixlearn import run_row

    result = run_row(args.study, resolve_task_id(args.row), args.force)
    print(f"row {result.get('row', args.row)}: accuracy {result['accuracy']:.4f}")
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.mixlearn import collect

    print(collect(args.study))
    return 0


def add_mixlearn_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex mixlearn`` and its subcommands."""
    mixlearn = sub.add_parser("mixlearn", help="classifiers on genuine + synthetic mixes")
    commands = mixlearn.add_subparsers(dest="mixlearn_command", required=True)
    plan = commands.add_parser("plan", help="write training.plan.csv for a study spec")
    plan.add_argument("spec", type=Path)
    plan.add_argument("-o", "--output", required=True, type=Path)
    plan.add_argument("--small", action="store_true")
    plan.add_argument("--dataset", type=Path, default=None, help="dataset folder to use")
    plan.set_defaults(func=_cmd_plan)
    flows = commands.add_parser("flows", help="train the signal and background flows, draw pools")
    flows.add_argument("study")
    flows.add_argument("--class", dest="cls", choices=["signal", "background"])
    flows.set_defaults(func=_cmd_flows)
    run = commands.add_parser("run", help="one classifier row (default: the array index)")
    run.add_argument("study")
    run.add_argument("--row", type=int, default=None)
    run.add_argument("--force", action="store_true")
    run.set_defaults(func=_cmd_run)
    collect = commands.add_parser("collect", help="merge rows into training.plan.csv, heat maps")
    collect.add_argument("study")
    collect.set_defaults(func=_cmd_collect)
