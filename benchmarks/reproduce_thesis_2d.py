"""Reproduce the thesis's 2D table: mean KL(target || MAF) at 5 MADE blocks, 3 seeds.

Each training runs in its own process (TensorFlow is not fork-safe, and memory is
returned when the process ends), ``--jobs`` at a time with ``--threads`` each.
Runs live in ``--out``; rerunning the script resumes unfinished runs and
re-evaluates finished ones through ``fedhex train CONFIG --resume RUN``, which
refuses a run whose stored config differs, so no stale result is reused.

    python benchmarks/reproduce_thesis_2d.py --out runs/thesis2d --jobs 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Thesis table (mean KL by number of MAF blocks, 2D), the 5-block column.
THESIS_KL_5_BLOCKS = {
    "two_gaussians": ("2 Gaussians", 0.03),
    "three_in_row": ("3 Gaussians, row", 0.04),
    "four_connected": ("4 connected Gaussians", 0.01),
    "random_gaussians": ("7 random Gaussians", 0.04),
}


def train_one(target: str, seed: int, out: Path, threads: int, blocks: int) -> dict:
    """Train (or resume) one run and return its metrics."""
    run = out / f"{target}-b{blocks}-s{seed}"
    config = ROOT / "configs" / "dim2" / f"{target}.yaml"
    overrides = [
        f"run.seed={seed}",
        f"flow.n_blocks={blocks}",
        f"train.threads={threads}",
        "evaluate.classifier_auc=false",
    ]
    cmd = [sys.executable, "-m", "fedhex_hpc.cli", "train", str(config)]
    for o in overrides:
        cmd += ["--set", o]
    cmd += ["--resume", str(run)] if (run / "config.yaml").exists() else ["--run-dir", str(run)]
    log = out / f"{run.name}.log"
    with open(log, "a") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=True)
    return json.loads((run / "metrics.json").read_text())


def main() -> None:
    """Run the study and print our mean KL beside the thesis's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "thesis2d")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(t, s) for t in THESIS_KL_5_BLOCKS for s in range(1, args.seeds + 1)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(
            pool.map(lambda job: train_one(*job, args.out, args.threads, args.blocks), jobs)
        )
    kl: dict[str, list[float]] = {t: [] for t in THESIS_KL_5_BLOCKS}
    epochs: dict[str, list[int]] = {t: [] for t in THESIS_KL_5_BLOCKS}
    for (target, _), metrics in zip(jobs, results, strict=True):
        kl[target].append(metrics["kl"]["value"])
        epochs[target].append(metrics["training"]["epochs"])
    print(f"\nmean KL(target || MAF), {args.blocks} MADE blocks, {args.seeds} seeds each\n")
    print("| target | ours (mean ± sd) | thesis | ours / thesis | epochs (mean) |")
    print("|---|---|---|---|---|")
    for target, (label, theirs) in THESIS_KL_5_BLOCKS.items():
        values = np.asarray(kl[target])
        print(
            f"| {label} | {values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}"
            f" | {theirs:.2f} | {values.mean() / theirs:.2f} | {np.mean(epochs[target]):.0f} |"
        )


if __name__ == "__main__":
    main()
