"""``fedhex evaluate``: metrics.json and plots for a finished run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedhex_hpc.data.training import load_test_split
from fedhex_hpc.errors import RunDirError
from fedhex_hpc.evaluate import (
    bounds_from_samples,
    classifier_auc,
    kl_divergence,
    mean_log_likelihood,
    per_feature_comparison,
    plot_density_2d,
    plot_loss_curves,
    plot_marginals,
)
from fedhex_hpc.flows import FlowModel, load_flow
from fedhex_hpc.io_utils import write_json_atomic
from fedhex_hpc.runs import RunDir
from fedhex_hpc.seeding import derive_seed
from fedhex_hpc.targets import Target, get_target
from fedhex_hpc.workflows.sample import draw_samples

__all__ = ["evaluate_run"]

#: Seed streams of a run (training data uses 0-2, see fedhex_hpc.data.arrays).
KL_STREAM, SAMPLE_STREAM = 3, 4


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _kl(model: FlowModel, target: Target, n: int, seed: int) -> dict:
    x, cond = target.sample(n, seed=derive_seed(seed, KL_STREAM))
    log_p = target.log_prob(x, cond)
    log_q = model.log_prob_batched(x, cond)
    return kl_divergence(log_p, log_q).to_dict()


def _plots(run: RunDir, model: FlowModel, target: Target | None, generated, reference) -> list[str]:
    names = model.spec.feature_names
    made = [plot_loss_curves(pd.read_csv(run.history_file), run.plots / "loss.png")]
    made.append(plot_marginals(generated, reference, names, run.plots / "marginals.png"))
    if target is not None and target.dim == 2 and target.cond_dim == 0:

        def log_q(points: np.ndarray) -> np.ndarray:
            return model.log_prob_batched(points)

        bounds = bounds_from_samples(reference)
        made.append(
            plot_density_2d(
                target.log_prob,
                log_q,
                (bounds[0], bounds[1]),
                run.plots / "density.png",
                names=(names[0], names[1]),
            )
        )
    return [str(Path(p).relative_to(run.path)) for p in made]


def evaluate_run(run_dir: str | Path) -> dict[str, Any]:
    """Evaluate a run's final model on its test split; write metrics.json and plots."""
    run = RunDir.open(run_dir)
    if not run.model.is_dir():
        raise RunDirError(
            f"{run.path} has no trained model yet (state: {run.status().get('state')})"
        )
    config = run.config()
    seed = config.run.seed
    model = load_flow(run.model)
    test = load_test_split(config.data, seed)
    metrics: dict[str, Any] = {"n_test": len(test)}
    log_q = model.log_prob_batched(test.x, test.cond)
    metrics["test_log_likelihood"] = mean_log_likelihood(log_q, test.weight).to_dict()
    metrics["test_non_finite"] = int((~np.isfinite(log_q)).sum())
    target = None
    if config.data.source == "target":
        target = get_target(config.data.target, **config.data.target_params)
        metrics["kl"] = _kl(model, target, config.evaluate.n_kl_samples, seed)
    n_gen = min(config.evaluate.n_generated, len(test))
    reference = test.take(slice(0, n_gen))
    generated = draw_samples(model, n_gen, reference.cond, seed=seed * 1000 + SAMPLE_STREAM)
    metrics["features"] = per_feature_comparison(
        generated, reference.x, model.spec.feature_names, bins=config.evaluate.bins
    )
    if config.evaluate.classifier_auc:
        joint = [generated, reference.x]
        if reference.cond is not None:
            joint = [
                np.hstack([generated, reference.cond]),
                np.hstack([reference.x, reference.cond]),
            ]
        metrics["classifier_auc"] = classifier_auc(joint[0], joint[1], seed=seed).to_dict()
    metrics["training"] = run.status()
    if config.evaluate.plots:
        metrics["plots"] = _plots(run, model, target, generated, reference.x)
    write_json_atomic(run.metrics_file, _finite_or_none(metrics))
    return metrics
