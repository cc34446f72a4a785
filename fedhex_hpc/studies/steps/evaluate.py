"""``fedhex evaluate``: metrics.json and plots for a finished run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedhex_hpc.data import Arrays
from fedhex_hpc.data.domain import DomainSplit, describe_outside, split_by_domain
from fedhex_hpc.data.training import load_test_split
from fedhex_hpc.errors import DataError, RunDirError
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
from fedhex_hpc.flows import FlowModel
from fedhex_hpc.io_utils import write_json_atomic
from fedhex_hpc.runs import RunDir
from fedhex_hpc.seeding import derive_seed
from fedhex_hpc.studies.steps.sample import draw_samples
from fedhex_hpc.studies.steps.train import final_flow
from fedhex_hpc.targets import Target, get_target

__all__ = ["evaluate_run"]


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _inside(model: FlowModel, data: Arrays, what: str) -> DomainSplit:
    """The events of ``data`` inside the flow's domain (a DataError when there are none)."""
    split = split_by_domain(model, data)
    if split.n_outside == len(data):
        text = describe_outside(model, len(data), len(data), split.outside_counts, what)
        raise DataError(f"nothing to score: {text}")
    return split


def _kl(model: FlowModel, target: Target, n: int, seed: int) -> tuple[dict, int]:
    x, cond = target.sample(n, seed=derive_seed(seed, "kl_samples"))
    samples = Arrays(x.astype(np.float32), None if cond is None else cond.astype(np.float32))
    split = _inside(model, samples, "KL sample")
    log_p = target.log_prob(x[split.mask], None if cond is None else cond[split.mask])
    return kl_divergence(
        log_p, model.log_prob_batched(split.inside.x, split.inside.cond)
    ).to_dict(), split.n_outside


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
    model = final_flow(run, config.train)
    test = load_test_split(config.data, seed)
    metrics: dict[str, Any] = {"n_test": len(test)}
    scored = _inside(model, test, "test")
    metrics["test_outside_domain"] = scored.n_outside
    log_q = model.log_prob_batched(scored.inside.x, scored.inside.cond)
    metrics["test_log_likelihood"] = mean_log_likelihood(log_q, scored.inside.weight).to_dict()
    metrics["test_non_finite"] = int((~np.isfinite(log_q)).sum())
    target = None
    if config.data.source == "target":
        target = get_target(config.data.target, **config.data.target_params)
        metrics["kl"], metrics["kl_outside_domain"] = _kl(
            model, target, config.evaluate.n_kl_samples, seed
        )
    n_gen = min(config.evaluate.n_generated, len(test))
    reference = test.take(slice(0, n_gen))
    generated = draw_samples(model, n_gen, reference.cond, seed=derive_seed(seed, "generated"))
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
