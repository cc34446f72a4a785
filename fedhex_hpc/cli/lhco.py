"""``fedhex lhco ...``: the LHC Olympics anomaly-detection study (CATHODE, ANODE, baselines).

``plan`` writes the study folder; it then runs and collects with the commands every
study has (``fedhex submit``, ``task``, ``status``, ``retry``, ``collect``). The
``prepare``, ``flow-config`` and ``template`` commands run one group's shared
steps on their own, as ``jobs/train_lhco.sh`` does to train the flow with one
rank per task; ``score`` scores a dataset with a done task's model, split over the
ranks of ``srun -n N`` / ``mpirun -np N``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_lhco_commands"]


def _cmd_plan(args: argparse.Namespace) -> int:
    from fedhex_hpc.config import apply_override
    from fedhex_hpc.studies.lhco_anomaly import plan_study

    overrides: dict = {}
    for assignment in args.set:
        apply_override(overrides, assignment)
    print(plan_study(args.spec, args.output, small=args.small, overrides=overrides))
    return 0


def _steps(args: argparse.Namespace):
    from fedhex_hpc.studies.lhco_anomaly import LhcoFolder
    from fedhex_hpc.studies.lhco_anomaly.shared import GroupSteps

    folder = LhcoFolder(args.study)
    groups = folder.groups()
    if not 0 <= args.group < len(groups):
        from fedhex_hpc.errors import ConfigError

        raise ConfigError(f"{args.study}: no group {args.group}; groups 0..{len(groups) - 1}")
    return GroupSteps(folder, args.group)


def _cmd_prepare(args: argparse.Namespace) -> int:
    prepared = _steps(args).prepared()
    print(f"prepared: {prepared.path}")
    return 0


def _cmd_flow_config(args: argparse.Namespace) -> int:
    import yaml

    from fedhex_hpc.config import config_to_dict
    from fedhex_hpc.io_utils import write_text_atomic

    steps = _steps(args)
    steps.prepared()
    config = steps.flow_config(args.which, args.features)
    write_text_atomic(args.output, yaml.safe_dump(config_to_dict(config), sort_keys=False))
    print(steps.flow_dir(args.which, args.features))
    return 0


def _cmd_template(args: argparse.Namespace) -> int:
    steps = _steps(args)
    parts = steps.template(args.features)
    counts = ", ".join(f"{name} {len(part['mjj'])}" for name, part in parts.items())
    print(f"template: {steps.template_dir(args.features)} ({counts})")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.lhco_anomaly.score import score_dataset
    from fedhex_hpc.studies.steps.ranks import world

    comm = world()
    manifest = score_dataset(
        args.study, args.task, args.dataset, args.output, args.split, comm, args.block_rows
    )
    if comm.rank == 0:
        rows = sum(manifest.splits[args.split].values())
        print(f"wrote {args.output}: {rows} scored rows of {args.split} on {comm.size} rank(s)")
    return 0


def add_lhco_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex lhco`` and its subcommands."""
    group = sub.add_parser("lhco", help="LHC Olympics anomaly detection: CATHODE, ANODE, SIC")
    commands = group.add_subparsers(dest="lhco_command", required=True)
    plan = commands.add_parser("plan", help="write an anomaly-detection study folder")
    plan.add_argument("spec", help="a spec file or a bundled name such as lhco_anomaly")
    plan.add_argument("-o", "--output", required=True, type=Path)
    plan.add_argument("--small", action="store_true", help="the spec's small variant")
    plan.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec key (YAML value), e.g. seeds=[1] or n_signal=[1000]",
    )
    plan.set_defaults(func=_cmd_plan)
    for name, func, text in (
        ("prepare", _cmd_prepare, "prepare one group's weak-supervision splits"),
        ("flow-config", _cmd_flow_config, "write a group flow's resolved training config"),
        ("template", _cmd_template, "sample one group's CATHODE template"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("study", type=Path)
        command.add_argument("--group", type=int, default=0, help="the (seed, n_signal) group")
        command.add_argument("--features", default="baseline", help="the flow's feature set")
        if name == "flow-config":
            command.add_argument("--which", choices=["outer", "inner"], default="outer")
            command.add_argument("-o", "--output", required=True, type=Path)
        command.set_defaults(func=func)
    score = commands.add_parser(
        "score", help="score a dataset's rows with a done task's model (split over MPI ranks)"
    )
    score.add_argument("study", type=Path)
    score.add_argument("--task", type=int, required=True, help="a done task of the study")
    score.add_argument("--dataset", type=Path, required=True, help="a dataset folder to score")
    score.add_argument("--split", default="test", help="its split to score (default test)")
    score.add_argument("-o", "--output", required=True, type=Path, help="dataset folder to write")
    score.add_argument("--block-rows", type=int, help="rows a rank scores at once (default 65536)")
    score.set_defaults(func=_cmd_score)
