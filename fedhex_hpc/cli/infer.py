"""``fedhex infer ...``: likelihood fits, profile scans and toy studies with conditional flows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["FIT_FAILED_EXIT_CODE", "add_infer_commands"]

#: Exit code of a fit that did not converge (its result is still written).
FIT_FAILED_EXIT_CODE = 4


def _converged(result: dict) -> int:
    if result["valid"]:
        return 0
    print(
        f"fit did not converge: EDM {result['edm']:.3g} (goal {result['edm_goal']:.3g}) "
        f"after {result['calls']} calls",
        file=sys.stderr,
    )
    return FIT_FAILED_EXIT_CODE


def _cmd_fit(args: argparse.Namespace) -> int:
    from fedhex_hpc.infer.commands import fit_file

    output = args.output or Path(args.data).with_suffix(".fit.json")
    result = fit_file(
        args.spec,
        args.data,
        output,
        args.weight,
        args.key,
        args.allow_extrapolation,
        args.max_calls,
    )
    print(f"{result['convention']}; {result['likelihood']} fit of {result['events']} events")
    for name, info in result["parameters"].items():
        minos = info["minos"]
        interval = (
            f"  minos {minos['lower']:+.4g} {minos['upper']:+.4g}"
            if minos and minos["valid"]
            else ""
        )
        fixed = "  (fixed)" if info["fixed"] else ""
        print(f"  {name:<12} {info['value']:.6g} ± {info['error']:.3g}{interval}{fixed}")
    print(
        f"  -2lnL {result['minus_two_log_likelihood']:.6f}  EDM {result['edm']:.2g}  "
        f"calls {result['calls']}  covariance {result['covariance_kind']}"
    )
    print(f"written: {output}")
    return _converged(result)


def _cmd_scan_plan(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.scan.folder import ScanProblem
    from fedhex_hpc.studies.scan.study import plan_scan

    problem = ScanProblem(
        str(args.spec), str(args.data), args.weight, args.key, args.allow_extrapolation
    )
    names = [args.param, *([args.param2] if args.param2 else [])]
    result = plan_scan(problem, args.plan, names, args.points, args.width)
    code = _converged(result)
    if not code:
        print(
            f"scan study in {args.plan}: {result['tasks']} tasks (one per grid point); "
            f"next: fedhex submit {args.plan}, then fedhex collect {args.plan}"
        )
    return code


def _cmd_scan(args: argparse.Namespace) -> int:
    from fedhex_hpc.infer.commands import scan_file

    if args.plan:
        return _cmd_scan_plan(args)

    suffix = f"{args.param}" + (f"-{args.param2}" if args.param2 else "")
    output = args.output or Path(args.data).with_suffix(f".scan-{suffix}.csv")
    result = scan_file(
        args.spec,
        args.data,
        output,
        args.param,
        args.param2 or "",
        args.points,
        args.width,
        args.weight,
        args.key,
        args.allow_extrapolation,
    )
    code = _converged(result)
    if code:
        return code
    scan = result["scan"]
    for label, interval in scan.get("intervals", {}).items():
        print(f"{args.param} {label}: [{interval['lower']:.6g}, {interval['upper']:.6g}]")
    if scan.get("minos"):
        best, minos = scan["best"], scan["minos"]
        print(
            f"{args.param} MINOS 1sigma: [{best + minos['lower']:.6g}, {best + minos['upper']:.6g}]"
        )
    print("written: " + ", ".join(result["files"]))
    return 0


def _cmd_toys_plan(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.toys import plan_study

    tasks = plan_study(args.spec, args.output, small=args.small)
    print(f"toys study in {args.output}: {tasks} tasks; next: fedhex submit {args.output}")
    return 0


def _cmd_toys_flows(args: argparse.Namespace) -> int:
    from fedhex_hpc.studies.toys.study import train_flows

    print(train_flows(args.study))
    return 0


def _add_problem(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="model spec (YAML)")
    parser.add_argument("--data", required=True, type=Path, help="events: HDF5, .npz or .npy")
    parser.add_argument("--key", default="", help="HDF5 group or dataset of the events")
    parser.add_argument("--weight", default="", help="column of event weights")
    parser.add_argument(
        "--allow-extrapolation",
        action="store_true",
        help="let condition parameters leave the trained range",
    )
    parser.add_argument("-o", "--output", type=Path, default=None)


def add_infer_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex infer`` and its subcommands."""
    infer = sub.add_parser("infer", help="likelihood fits, profile scans and toy studies")
    commands = infer.add_subparsers(dest="infer_command", required=True)
    fit = commands.add_parser("fit", help="MIGRAD + HESSE + MINOS; result JSON")
    _add_problem(fit)
    fit.add_argument("--max-calls", type=int, default=0, help="MIGRAD call limit (0: default)")
    fit.set_defaults(func=_cmd_fit)
    scan = commands.add_parser("scan", help="profile-likelihood scan; CSV, plot and JSON")
    _add_problem(scan)
    scan.add_argument("--param", required=True)
    scan.add_argument("--param2", default="", help="second parameter of a 2D scan")
    scan.add_argument("--points", type=int, default=0, help="grid points (1D 41, 2D 21)")
    scan.add_argument("--width", type=float, default=0.0, help="HESSE errors each side (4, 2D 3)")
    scan.add_argument(
        "--plan",
        type=Path,
        default=None,
        help="write a scan study here instead: one job-array task per grid point",
    )
    scan.set_defaults(func=_cmd_scan)
    toys = commands.add_parser("toys", help="toy studies: plan, then fedhex submit/collect")
    toy_commands = toys.add_subparsers(dest="toys_command", required=True)
    plan = toy_commands.add_parser("plan", help="write a toys study folder")
    plan.add_argument("spec", help="toys spec: a YAML file or a bundled name")
    plan.add_argument("-o", "--output", required=True, type=Path)
    plan.add_argument("--small", action="store_true", help="the spec's small variant")
    plan.set_defaults(func=_cmd_toys_plan)
    flows = toy_commands.add_parser("flows", help="train the study's flows")
    flows.add_argument("study")
    flows.set_defaults(func=_cmd_toys_flows)
