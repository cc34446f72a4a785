"""``fedhex doctor`` and ``fedhex targets``: the node's readiness, the known distributions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_tool_commands"]


def _cmd_doctor(args: argparse.Namespace) -> int:
    from fedhex_hpc.doctor import exit_code, format_table, run_checks

    checks = run_checks(
        [Path(p) for p in args.data],
        Path(args.run_dir) if args.run_dir else None,
        Path(args.image) if args.image else None,
    )
    if args.json:
        print(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        print(format_table(checks))
    return exit_code(checks)


def _cmd_targets(args: argparse.Namespace) -> int:
    from fedhex_hpc.targets import list_targets

    rows = list_targets()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0


def add_tool_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex doctor`` and ``fedhex targets``."""
    doctor = sub.add_parser("doctor", help="preflight check of this node and environment")
    doctor.add_argument("--data", action="append", default=[], help="data folder or file to check")
    doctor.add_argument("--run-dir", help="where runs will be written")
    doctor.add_argument("--image", help="Apptainer image to use")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=_cmd_doctor)

    targets = sub.add_parser("targets", help="known target distributions")
    targets.add_argument("action", choices=["list"])
    targets.set_defaults(func=_cmd_targets)
