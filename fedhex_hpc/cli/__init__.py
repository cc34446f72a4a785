"""The ``fedhex`` command: argument parsing, printing and exit codes only, no logic.

Each module registers one group of subcommands: ``runs`` (train, sample,
evaluate), ``data``, ``studies`` (sweep, submit, task, status, retry, collect),
``mixlearn``, ``interpolation``, ``infer``, ``lhco`` and ``tools`` (doctor, targets).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fedhex_hpc import __version__
from fedhex_hpc.cli.data import add_data_commands
from fedhex_hpc.cli.infer import add_infer_commands
from fedhex_hpc.cli.interpolation import add_interpolation_commands
from fedhex_hpc.cli.lhco import add_lhco_commands
from fedhex_hpc.cli.mixlearn import add_mixlearn_commands
from fedhex_hpc.cli.runs import add_run_commands
from fedhex_hpc.cli.studies import add_study_commands
from fedhex_hpc.cli.tools import add_tool_commands
from fedhex_hpc.errors import (
    PREEMPTED_EXIT_CODE,
    FedhexError,
    Preempted,
    TrainingError,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedhex", description="Masked Autoregressive Flows for particle physics on HPC."
    )
    parser.add_argument("--version", action="version", version=f"fedhex-hpc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        add_run_commands,
        add_data_commands,
        add_study_commands,
        add_mixlearn_commands,
        add_interpolation_commands,
        add_infer_commands,
        add_lhco_commands,
        add_tool_commands,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fedhex``; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except TrainingError as exc:
        print(exc, file=sys.stderr)
        return 3
    except FedhexError as exc:
        print(exc, file=sys.stderr)
        return 2
    except Preempted as exc:
        print(f"preempted: {exc}; continue with --resume", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
