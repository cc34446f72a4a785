"""``fedhex train``, ``sample``, ``evaluate`` and ``export``: one run, by its config or folder."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fedhex_hpc.errors import ConfigError

__all__ = ["add_run_commands"]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _load_config(name_or_path: str, overrides: list[str]):
    """A config file or a bundled config name (``lhco/anode``), with ``--set`` applied."""
    from fedhex_hpc.config import load_config
    from fedhex_hpc.resources import resolve

    return load_config(resolve("config", name_or_path), overrides)


def _cmd_train(args: argparse.Namespace) -> int:
    from fedhex_hpc.config import config_to_dict
    from fedhex_hpc.runs import RunDir

    # The config is checked before TensorFlow is imported: a mistake in it is reported at once.
    if args.resume:
        run_dir = Path(args.resume)
        if args.config:
            wanted = _flatten(config_to_dict(_load_config(args.config, args.set)))
            stored = _flatten(config_to_dict(RunDir.open(run_dir).config()))
            for key in wanted:
                if wanted[key] != stored.get(key):
                    raise ConfigError(
                        f"{key} is {wanted[key]!r} in {args.config} but {stored.get(key)!r} in "
                        f"{run_dir}/config.yaml; resume uses the run's own config"
                    )
        config = None
    else:
        if not args.config:
            raise ConfigError("give a config file (fedhex train CONFIG) or --resume RUN_DIR")
        config = _load_config(args.config, args.set)
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / config.run.name
    from fedhex_hpc.studies.steps import evaluate_run, train_run

    result = train_run(config, run_dir, resume=bool(args.resume))
    if result.rank != 0:
        return 0  # rank 0 reports and evaluates
    print(
        f"training {result.reason} after {result.state.epoch} epochs; best val_loss "
        f"{result.state.best_val:.5f} at epoch {result.state.best_epoch}; model in {run_dir}/model"
    )
    if not args.no_evaluate:
        _report(evaluate_run(run_dir), run_dir)
    return 0


def _report(metrics: dict, run_dir: Path) -> None:
    from fedhex_hpc.evaluate.catalog import report_line

    print(report_line(metrics))
    print(f"metrics: {run_dir}/metrics.json  plots: {run_dir}/plots/")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from fedhex_hpc.runs import RunDir

    RunDir.open(args.run_dir)  # a wrong folder is reported before TensorFlow is imported
    from fedhex_hpc.studies.steps import evaluate_run

    _report(evaluate_run(args.run_dir), Path(args.run_dir))
    return 0


def _parse_conditions(values: list[str]) -> np.ndarray:
    rows = []
    for text in values:
        try:
            rows.append([float(v) for v in text.split(",")])
        except ValueError:
            raise ConfigError(f"--cond expects comma-separated numbers, got {text!r}") from None
    if len({len(r) for r in rows}) > 1:
        raise ConfigError("every --cond must have the same number of values")
    return np.asarray(rows, dtype=np.float32)


def _cmd_sample(args: argparse.Namespace) -> int:
    # TensorFlow is imported only where it is needed: missing arguments are reported at once.
    if args.template:
        return _sample_template(args)
    cond = None
    if args.cond_dataset:
        from fedhex_hpc.studies.steps import dataset_conditions

        base = dataset_conditions(args.run_dir, args.cond_dataset, args.region, args.cond_split)
        cond = np.repeat(base, args.n or 1, axis=0)
    elif args.cond_file:
        from fedhex_hpc.data import read_columns
        from fedhex_hpc.flows import load_flow
        from fedhex_hpc.runs import RunDir

        names = load_flow(RunDir.open(args.run_dir).model).spec.condition_names
        columns = read_columns(args.cond_file, names, args.cond_key)
        cond = np.stack([columns[n] for n in names], axis=1)
    elif args.cond:
        if args.n is None:
            raise ConfigError("--cond needs -n (events per condition)")
        cond = np.repeat(_parse_conditions(args.cond), args.n, axis=0)
    elif args.n is None:
        raise ConfigError("give -n N (number of events)")
    from fedhex_hpc.studies.steps import sample_run

    out = sample_run(args.run_dir, args.n or 0, args.output, cond, seed=args.seed)
    print(f"wrote {out}")
    return 0


def _sample_template(args: argparse.Namespace) -> int:
    """``fedhex sample --template``: a background template dataset, split over MPI ranks."""
    from fedhex_hpc.data import read_columns
    from fedhex_hpc.studies.steps import dataset_conditions
    from fedhex_hpc.studies.steps.ranks import world
    from fedhex_hpc.studies.steps.template import ensemble_models, fit_mjj_kde, write_template

    if args.n is None:
        raise ConfigError("--template needs -n (rows of the template)")
    if args.cond_dataset:
        mjj = dataset_conditions(args.run_dir, args.cond_dataset, args.region, args.cond_split)
    elif args.cond_file:
        names = ensemble_models(args.run_dir)[0].spec.condition_names
        mjj = read_columns(args.cond_file, names, args.cond_key)[names[0]]
    else:
        raise ConfigError("--template needs the mjj to fit its KDE: --cond-dataset or --cond-file")
    comm = world()
    kde = fit_mjj_kde(mjj, args.kde_bandwidth)
    manifest = write_template(args.run_dir, kde, args.n, args.seed, args.output, comm)
    if comm.rank == 0:
        counts = manifest.options["counts"]
        print(
            f"wrote {args.output}: {counts['requested'] - counts['dropped']} template rows "
            f"({counts['dropped']} outside the flow's domain dropped) on {comm.size} rank(s)"
        )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from fedhex_hpc.flows import export_saved_model, load_flow
    from fedhex_hpc.runs import RunDir

    out = export_saved_model(load_flow(RunDir.open(args.run_dir).model), args.output)
    print(f"exported {args.run_dir} to {out} (tf.saved_model.load; log_prob and sample)")
    return 0


def add_run_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``fedhex train``, ``sample``, ``evaluate`` and ``export``."""
    train = sub.add_parser("train", help="train a flow from a YAML config")
    train.add_argument("config", nargs="?", help="YAML config file or bundled name (lhco/anode)")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value"
    )
    train.add_argument("--run-dir", help="run directory (default runs/<run.name>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    train.add_argument("--no-evaluate", action="store_true", help="skip evaluation afterwards")
    train.set_defaults(func=_cmd_train)

    sample = sub.add_parser("sample", help="draw events from a trained run")
    sample.add_argument("run_dir")
    sample.add_argument("-n", type=int, help="events (per --cond value)")
    sample.add_argument(
        "-o", "--output", required=True, help="output HDF5 file (dataset folder with --template)"
    )
    sample.add_argument(
        "--cond", action="append", default=[], metavar="V1,V2", help="condition values"
    )
    sample.add_argument("--cond-file", help="file with one condition row per event")
    sample.add_argument("--cond-key", default="", help="HDF5 group of --cond-file")
    sample.add_argument(
        "--cond-dataset", help="take conditions from a dataset's events (-n: samples per event)"
    )
    sample.add_argument("--region", default="signal", choices=["signal", "sideband", "all"])
    sample.add_argument("--cond-split", default="test", choices=["train", "val", "test"])
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument(
        "--template",
        action="store_true",
        help="CATHODE background template: -n rows over the run's ensemble, mjj from a KDE of "
        "the --cond-dataset/--cond-file mjj; a dataset folder, rows split over MPI ranks",
    )
    sample.add_argument("--kde-bandwidth", type=float, default=0.01, help="with --template")
    sample.set_defaults(func=_cmd_sample)

    evaluate = sub.add_parser("evaluate", help="metrics.json and plots for a run")
    evaluate.add_argument("run_dir")
    evaluate.set_defaults(func=_cmd_evaluate)

    export = sub.add_parser("export", help="the run's model as a TensorFlow SavedModel")
    export.add_argument("run_dir")
    export.add_argument("-o", "--output", required=True, help="SavedModel folder to write")
    export.set_defaults(func=_cmd_export)
