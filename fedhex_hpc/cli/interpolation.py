"""``fedhex interpolation ...``: conditional flows judged at held-out label points.

Planned folders run and collect with the commands every study has (``fedhex
submit``, ``task``, ``status``, ``retry``, ``collect``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_interpolation_commands"]


def _cmd_plan(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.interpolation.study import plan_study

    print(plan_study(args.spec, args.output, small=args.small, dataset=args.dataset))
    return 0


def _cmd_root_grid(args: argparse.Namespace) -> int:
    from fedhex_hpc.data.synthetic.root_grid import write_root_grid

    files = write_root_grid(args.output, n_events=args.events, seed=args.seed)
    print(f"{len(files)} SYNTHETIC ROOT files (tree Events) in {args.output}")
    return 0


def add_interpolation_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex interpolation`` and its subcommands."""
    group = sub.add_parser("interpolation", help="conditional flows judged at held-out points")
    commands = group.add_subparsers(dest="interpolation_command", required=True)
    plan = commands.add_parser("plan", help="check the data and write the study's folds")
    plan.add_argument("spec", help="a spec file or a bundled name such as interp_grid")
    plan.add_argument("-o", "--output", required=True, type=Path)
    plan.add_argument("--small", action="store_true")
    plan.add_argument("--dataset", type=Path, default=None, help="dataset folder to use")
    plan.set_defaults(func=_cmd_plan)
    grid = commands.add_parser(
        "root-grid", help="write SYNTHETIC FEDHEX-like ROOT files, one per (m_Phi, m_omega)"
    )
    grid.add_argument("-o", "--output", required=True, type=Path)
    grid.add_argument("-n", "--events", type=int, default=4000, help="events per mass point")
    grid.add_argument("--seed", type=int, default=0)
    grid.set_defaults(func=_cmd_root_grid)
