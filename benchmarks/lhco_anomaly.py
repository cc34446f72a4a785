"""The LHC Olympics anomaly-detection figures: three lhco_anomaly studies through the CLI.

All three share one set of SYNTHETIC input files and one folder of group steps
(``shared_dir``), so each (seed, n_signal) group's prepared data, flows and template
are built once and reused by every study that needs them:

* ``methods``: every method with the tree ensemble, ``--seeds`` seeds, the default
  injection (the n_signal giving SR S/B = ``--s-over-b``, 0.6 % as on the real file);
* ``classifiers``: CATHODE with the tree ensemble and the network, each without and
  with 10 Gaussian-noise inputs, same seeds and injection;
* ``scan``: CATHODE and the idealized AD with trees at n_signal 0 (closure), the
  default injection and three times it, on the first ``--scan-seeds`` seeds.

Each study runs with ``fedhex submit --scheduler local`` and ``fedhex collect``; the
script then prints the targets table (CATHODE / idealized median max SIC, trees /
network, trees with / without noise, closure at n_signal 0) and the median time of
each step.

Usage::

    python benchmarks/lhco_anomaly.py -o bench/lhco [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from fedhex_hpc.data.weak_supervision import PrepareConfig, prepare

#: Settings of every study (laid over the bundled spec); flows, epochs and ensembles are
#: smaller than CATHODE's (15 blocks of 2 x 128, 100 epochs, 50 trees, 100 network
#: epochs) so that a full run fits in about an hour on two cores.
COMMON = {
    "outer_flow.set.flow.n_blocks": 6,
    "outer_flow.set.flow.hidden_units": "[64,64]",
    "outer_flow.set.train.max_epochs": 20,
    "outer_flow.set.train.batch_size": 1024,
    "outer_flow.set.train.learning_rate": 1.0e-3,
    "outer_flow.set.train.threads": 1,
    "inner_flow.set.flow.n_blocks": 6,
    "inner_flow.set.flow.hidden_units": "[64,64]",
    "inner_flow.set.train.max_epochs": 40,
    "inner_flow.set.train.batch_size": 512,
    "inner_flow.set.train.learning_rate": 1.0e-3,
    "inner_flow.set.train.threads": 1,
    "trees.n_models": 20,
    "neural.epochs": 20,
    "neural.batch_size": 256,
    "evaluation.bootstrap": 100,
}
QUICK = {
    "outer_flow.set.flow.n_blocks": 2,
    "outer_flow.set.flow.hidden_units": "[16,16]",
    "outer_flow.set.train.max_epochs": 2,
    "inner_flow.set.flow.n_blocks": 2,
    "inner_flow.set.flow.hidden_units": "[16,16]",
    "inner_flow.set.train.max_epochs": 2,
    "trees.n_models": 2,
    "neural.epochs": 2,
    "neural.n_best": 1,
    "evaluation.bootstrap": 20,
}


def fedhex(*args: str) -> str:
    """Run the CLI; its standard output."""
    result = subprocess.run(
        [sys.executable, "-m", "fedhex_hpc.cli", *args], capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"fedhex {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def default_injection(features: Path, extra: Path, s_over_b: float, scratch: Path) -> int:
    """The n_signal that gives SR S/B = ``s_over_b`` on these inputs."""
    prepared = prepare(features, extra, scratch, PrepareConfig(n_signal=None, s_over_b=s_over_b))
    return int(prepared.summary()["n_injected"])


def run_study(out: Path, name: str, settings: dict, jobs: int) -> pd.DataFrame:
    """Plan, run and collect one study; its results table."""
    study = out / name
    if not (study / "study.json").is_file():
        args = ["lhco", "plan", "lhco_anomaly", "-o", str(study)]
        for key, value in settings.items():
            args += ["--set", f"{key}={value}"]
        print(fedhex(*args).strip(), flush=True)
    started = time.monotonic()
    fedhex("submit", str(study), "--scheduler", "local", "--jobs", str(jobs), "--threads", "1")
    print(f"{name}: tasks done in {time.monotonic() - started:.0f} s", flush=True)
    print(fedhex("collect", str(study)).strip(), flush=True)
    return pd.read_csv(study / "results.csv")


def _median(table: pd.DataFrame, column: str = "max_sic", **where) -> float:
    rows = table
    for key, value in where.items():
        rows = rows[rows[key] == value]
    return float(rows[column].median()) if len(rows) else float("nan")


def targets(methods: pd.DataFrame, classifiers: pd.DataFrame, scan: pd.DataFrame) -> str:
    """The issue's targets as a markdown table, each with its verdict."""
    cathode = _median(methods, method="cathode")
    ideal = _median(methods, method="idealized")
    cathode_25 = _median(methods, "max_sic_25", method="cathode")
    ideal_25 = _median(methods, "max_sic_25", method="idealized")
    trees = _median(classifiers, classifier="trees", noise=0)
    network = _median(classifiers, classifier="neural", noise=0)
    noisy = _median(classifiers, classifier="trees", noise=10)
    closure = scan[scan["n_signal"] == 0]
    inside = int(closure["closure_consistent"].sum())
    rows = [
        ("CATHODE / idealized median max SIC", cathode / ideal, ">= 0.85", cathode / ideal >= 0.85),
        (
            "the same, max SIC with >= 25 background events",
            cathode_25 / ideal_25,
            ">= 0.85",
            cathode_25 / ideal_25 >= 0.85,
        ),
        ("CATHODE trees / network", trees / network, ">= 1", trees / network >= 1),
        ("CATHODE trees +10 noise / trees", noisy / trees, ">= 0.9", noisy / trees >= 0.9),
        (
            "closure AUC inside its band (n_signal 0)",
            inside / max(len(closure), 1),
            "all",
            inside == len(closure),
        ),
    ]
    lines = ["| target | measured | wanted | met |", "|---|---|---|---|"]
    lines += [f"| {n} | {v:.3f} | {w} | {'yes' if ok else 'NO'} |" for n, v, w, ok in rows]
    return "\n".join(lines)


def step_times(tables: list[pd.DataFrame]) -> str:
    """Median seconds of each step over the tasks that ran it."""
    table = pd.concat(tables)
    lines = ["| step | median s | tasks |", "|---|---|---|"]
    for column in sorted(c for c in table.columns if c.startswith("seconds_")):
        values = table[column].dropna()
        values = values[values > 0]
        if len(values):
            lines.append(
                f"| {column.removeprefix('seconds_')} | {values.median():.1f} | {len(values)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--events", type=int, default=300_000, help="synthetic R&D events")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--scan-seeds", type=int, default=2)
    parser.add_argument("--s-over-b", type=float, default=0.006)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny flows and models (a smoke run)")
    args = parser.parse_args()
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    inputs = out / "inputs"
    if not (inputs / "events_anomalydetection_qcd_extra_inneronly_features.h5").is_file():
        fedhex(
            "data", "generate", "features", "-o", str(inputs), "-n", str(args.events), "--seed", "1"
        )
        extra = max(1000, round(args.events * 612_858 / 1_100_000))
        fedhex("data", "generate", "extra", "-o", str(inputs), "-n", str(extra), "--seed", "2")
    features = inputs / "events_anomalydetection_v2.features.h5"
    extra = inputs / "events_anomalydetection_qcd_extra_inneronly_features.h5"
    n_default = default_injection(features, extra, args.s_over_b, out / "injection")
    seeds = list(range(1, args.seeds + 1))
    base = {
        **COMMON,
        **(QUICK if args.quick else {}),
        "inputs.features": features,
        "inputs.extra": extra,
        "shared_dir": out / "shared",
        "template.n_samples": 4 * PrepareConfig().sr_train * args.events // 1_100_000,
    }
    print(
        f"SYNTHETIC inputs: {args.events} events; default injection n_signal {n_default} "
        f"(SR S/B {args.s_over_b:.2%}); load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    started = time.monotonic()
    methods = run_study(
        out,
        "methods",
        {
            **base,
            "seeds": seeds,
            "n_signal": f"[{n_default}]",
            "reference_n_signal": n_default,
            "classifiers": "[trees]",
        },
        args.jobs,
    )
    classifiers = run_study(
        out,
        "classifiers",
        {
            **base,
            "seeds": seeds,
            "n_signal": f"[{n_default}]",
            "reference_n_signal": n_default,
            "methods": "[cathode]",
            "classifiers": "[trees,neural]",
            "noise": "[0,10]",
        },
        args.jobs,
    )
    scan_n = [0, n_default, 3 * n_default]
    scan = run_study(
        out,
        "scan",
        {
            **base,
            "seeds": seeds[: args.scan_seeds],
            "n_signal": json.dumps(scan_n),
            "reference_n_signal": n_default,
            "methods": "[cathode,idealized]",
            "classifiers": "[trees]",
        },
        args.jobs,
    )
    print(f"\nall studies in {time.monotonic() - started:.0f} s; load {os.getloadavg()[0]:.1f}")
    print("\n" + targets(methods, classifiers, scan))
    print("\n" + step_times([methods, classifiers, scan]))
    print(f"\nsummaries: {out}/{{methods,classifiers,scan}}/summary.md, plots/")


if __name__ == "__main__":
    main()
