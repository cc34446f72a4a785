"""``fedhex data ...``: convert inputs into dataset folders, describe and verify them,
and prepare the LHC Olympics weak-supervision splits."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_data_commands"]


def _names(text: str) -> list[str]:
    return [n for n in text.split(",") if n] if text else []


def _columns_source(args: argparse.Namespace):
    from fedhex_hpc.data.sources.columns import ColumnsSource

    return ColumnsSource(
        args.input[0],
        _names(args.features),
        _names(args.conditions),
        args.weight,
        args.class_column,
        args.key,
        args.chunk_rows,
    )


def _add_columns_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--features", required=True, help="comma-separated feature columns")
    parser.add_argument("--conditions", default="", help="comma-separated condition columns")
    parser.add_argument("--weight", default="", help="per-event weight column")
    parser.add_argument("--class-column", default="", help="column with 1 = signal, 0 = background")
    parser.add_argument("--key", default="", help="HDF5 group or compound dataset")
    parser.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows per partition")


def _expressions(items: list[str], option: str) -> dict[str, str]:
    """``NAME=EXPRESSION`` (or a bare branch name) -> {name: expression}."""
    from fedhex_hpc.errors import ConfigError

    out = {}
    for item in items:
        name, sep, expression = item.partition("=")
        if not name:
            raise ConfigError(f"{option} expects NAME=EXPRESSION or a branch name, got {item!r}")
        out[name] = expression if sep else name
    return out


def _add_root_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tree", required=True, help="TTree name, e.g. Events")
    parser.add_argument(
        "--feature",
        action="append",
        default=[],
        required=True,
        metavar="NAME=EXPR",
        help="feature column: a branch or an expression, "
        "e.g. m=TwoProng_massPi0[CBL_RecoPhi_twoprongindex]",
    )
    parser.add_argument(
        "--condition",
        action="append",
        default=[],
        metavar="NAME=EXPR",
        help="condition (label) column, e.g. phi_mass=GenPhi_mass[0]",
    )
    parser.add_argument("--weight", default=None, help="per-event weight expression")
    parser.add_argument("--cut", default=None, help="selection, e.g. (CBL_Region == 1)")
    parser.add_argument("--step-size", default="100 MB", help="entries or bytes per partition")


def _root_source(args: argparse.Namespace):
    from fedhex_hpc.data.sources.root import RootSource

    return RootSource(
        args.input,
        args.tree,
        _expressions(args.feature, "--feature"),
        _expressions(args.condition, "--condition"),
        args.weight,
        args.cut,
        int(args.step_size) if args.step_size.isdigit() else args.step_size,
    )


def _add_chunk_args(default: int) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--chunk-rows", type=int, default=default, help="rows per partition")

    return add


def _lhco_raw_source(args: argparse.Namespace):
    from fedhex_hpc.data.sources.lhco import LHCORawSource

    return LHCORawSource(args.input[0], args.chunk_rows)


def _lhco_tables_source(args: argparse.Namespace):
    from fedhex_hpc.data.sources.lhco import LHCOTableSource

    return LHCOTableSource(args.input, args.chunk_rows)


def _lhco_features_source(args: argparse.Namespace):
    from fedhex_hpc.data.sources.lhco import LHCOFeaturesSource

    return LHCOFeaturesSource(args.input[0], args.chunk_rows)


def _add_miniboone_args(parser: argparse.ArgumentParser) -> None:
    _add_chunk_args(50_000)(parser)
    parser.add_argument("--keep-outliers", action="store_true", help="keep events with -999")
    parser.add_argument(
        "--drop-discrete", action="store_true", help="drop the 7 discrete features (50 -> 43)"
    )


def _miniboone_source(args: argparse.Namespace):
    from fedhex_hpc.data.sources.miniboone import MiniBooNESource

    return MiniBooNESource(
        args.input[0], not args.keep_outliers, args.drop_discrete, args.chunk_rows
    )


#: source name -> (help, add its arguments, build it from parsed arguments)
SOURCES: dict[str, tuple[str, Callable, Callable]] = {
    "lhco": (
        "LHC Olympics R&D raw file (pandas fixed format, 2100 particle columns + label)",
        _add_chunk_args(8_192),
        _lhco_raw_source,
    ),
    "lhco-tables": (
        "the seed's events_anomalydetection_{background|signal}_table_{split}.h5 files",
        _add_chunk_args(10_000),
        _lhco_tables_source,
    ),
    "lhco-features": (
        "events_anomalydetection_v2.features.h5 -> ANODE/CATHODE features, mjj condition",
        _add_chunk_args(100_000),
        _lhco_features_source,
    ),
    "miniboone": ("UCI MiniBooNE_PID.txt", _add_miniboone_args, _miniboone_source),
    "root": (
        "ROOT TTrees (files or folders), branches or expressions",
        _add_root_args,
        _root_source,
    ),
    "columns": ("named columns of a .npy/.npz/HDF5 file", _add_columns_args, _columns_source),
}


def _cmd_generate(args: argparse.Namespace) -> int:
    from fedhex_hpc.data.synthetic.lhco import generate

    print("generating SYNTHETIC events in the LHC Olympics file layout (not real data)")
    for path in generate(args.kind, args.output, args.n, args.seed):
        print(f"wrote {path}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from fedhex_hpc.data.fetch import fetch

    for path in fetch(args.name, args.dest, args.base_url, args.file or None):
        print(f"have {path}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from fedhex_hpc.data.cluster import ClusterOptions
    from fedhex_hpc.data.convert import convert

    source = SOURCES[args.source][2](args)
    manifest = convert(
        source,
        args.output,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        strict=args.strict,
        overwrite=args.overwrite,
        cluster=ClusterOptions(
            workers=args.workers,
            threads=args.threads,
            memory_limit=args.memory_limit,
            scheduler=args.scheduler,
            profile=args.profile,
        ),
    )
    rows = sum(sum(c.values()) for c in manifest.splits.values())
    print(f"dataset {args.output}: {rows:,} events in {len(manifest.shards)} shards")
    return 0


def _cmd_prepare_lhco(args: argparse.Namespace) -> int:
    from fedhex_hpc.data.weak_supervision import DATASETS, PrepareConfig, prepare

    given = {
        "n_signal": args.n_signal,
        "s_over_b": args.s_over_b,
        "seed": args.seed,
        "signal_region": args.signal_region,
    }
    cfg = PrepareConfig.from_mapping(
        {key: value for key, value in given.items() if value is not None}, "prepare-lhco"
    )
    summary = prepare(args.features, args.extra, args.out, cfg, overwrite=args.overwrite).summary()
    print(
        f"prepared {args.out}: {summary['n_injected']:,} signal events injected, "
        f"{summary['n_injected_sr']:,} in the signal region, SR S/B = {summary['s_over_b']:.4g}"
    )
    for name, splits in DATASETS.items():
        for split in splits:
            counts = summary["datasets"][name][split]
            print(
                f"{name + '/' + split:<14}{sum(counts.values()):>10,} events "
                f"({counts['background']:,} background, {counts['signal']:,} signal)"
            )
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from fedhex_hpc.data.inspect import describe

    print(describe(args.dataset))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from fedhex_hpc.data.inspect import verify

    print(verify(args.dataset))
    return 0


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex data`` and its subcommands."""
    data = sub.add_parser("data", help="convert, describe and verify datasets")
    commands = data.add_subparsers(dest="data_command", required=True)

    convert = commands.add_parser("convert", help="convert inputs into a dataset folder")
    sources = convert.add_subparsers(dest="source", required=True)
    for name, (help_text, add_args, _) in SOURCES.items():
        parser = sources.add_parser(name, help=help_text)
        parser.add_argument("input", nargs="+", type=Path, help="input file(s) or folder(s)")
        parser.add_argument("-o", "--output", required=True, type=Path, help="dataset folder")
        add_args(parser)
        parser.add_argument("--seed", type=int, default=1, help="seed of the train/val/test split")
        parser.add_argument("--val-fraction", type=float, default=0.1)
        parser.add_argument("--test-fraction", type=float, default=0.1)
        parser.add_argument("--strict", action="store_true", help="fail on NaN/Inf rows")
        parser.add_argument("--overwrite", action="store_true", help="rebuild a finished dataset")
        parser.add_argument("--workers", type=int, default=2, help="local Dask worker processes")
        parser.add_argument("--threads", type=int, default=1, help="threads per Dask worker")
        parser.add_argument("--memory-limit", default="2GB", help="memory per local Dask worker")
        parser.add_argument("--scheduler", default="", help="address of an existing Dask scheduler")
        parser.add_argument("--profile", default="", help="site profile for Dask on Slurm")
        parser.set_defaults(func=_cmd_convert)

    generate = commands.add_parser(
        "generate", help="write synthetic files in the exact LHC Olympics layouts"
    )
    generate.add_argument("kind", choices=["raw", "tables", "features", "extra"])
    generate.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    generate.add_argument("-n", type=int, required=True, help="events (per file for tables)")
    generate.add_argument("--seed", type=int, default=0)
    generate.set_defaults(func=_cmd_generate)

    fetch = commands.add_parser("fetch", help="download public input files, resumable")
    fetch.add_argument("name", choices=["lhco"])
    fetch.add_argument("--dest", type=Path, default=Path("data"), help="download folder")
    fetch.add_argument("--file", action="append", default=[], help="only this file")
    fetch.add_argument("--base-url", default=None, help="mirror folder instead of Zenodo")
    fetch.set_defaults(func=_cmd_fetch)

    prep = commands.add_parser(
        "prepare-lhco",
        help="inject signal into LHCO features and write CATHODE's weak-supervision splits",
    )
    prep.add_argument("features", type=Path, help="events_anomalydetection_v2.features.h5")
    prep.add_argument(
        "--extra",
        type=Path,
        required=True,
        help="events_anomalydetection_qcd_extra_inneronly_features.h5",
    )
    prep.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    injection = prep.add_mutually_exclusive_group()
    injection.add_argument("--n-signal", type=int, help="signal events to inject (default 1000)")
    injection.add_argument("--s-over-b", type=float, help="or the signal-region S/B to inject")
    prep.add_argument("--seed", type=int, default=None, help="seed of every shuffle (default 1)")
    prep.add_argument(
        "--signal-region",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="signal region in mjj, TeV (default 3.3 3.7)",
    )
    prep.add_argument("--overwrite", action="store_true", help="rebuild a folder made otherwise")
    prep.set_defaults(func=_cmd_prepare_lhco)

    info = commands.add_parser("info", help="describe a dataset")
    info.add_argument("dataset", type=Path)
    info.set_defaults(func=_cmd_info)
    verify = commands.add_parser("verify", help="check a dataset's shards against its manifest")
    verify.add_argument("dataset", type=Path)
    verify.set_defaults(func=_cmd_verify)
