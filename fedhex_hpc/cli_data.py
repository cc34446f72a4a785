"""``fedhex data ...``: convert inputs into dataset folders, describe and verify them."""

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
    )


def _add_columns_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--features", required=True, help="comma-separated feature columns")
    parser.add_argument("--conditions", default="", help="comma-separated condition columns")
    parser.add_argument("--weight", default="", help="per-event weight column")
    parser.add_argument("--class-column", default="", help="column with 1 = signal, 0 = background")
    parser.add_argument("--key", default="", help="HDF5 group or compound dataset")


#: source name -> (help, add its arguments, build it from parsed arguments)
SOURCES: dict[str, tuple[str, Callable, Callable]] = {
    "columns": ("named columns of a .npy/.npz/HDF5 file", _add_columns_args, _columns_source),
}


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

    info = commands.add_parser("info", help="describe a dataset")
    info.add_argument("dataset", type=Path)
    info.set_defaults(func=_cmd_info)
    verify = commands.add_parser("verify", help="check a dataset's shards against its manifest")
    verify.add_argument("dataset", type=Path)
    verify.set_defaults(func=_cmd_verify)
