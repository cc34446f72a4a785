"""Statistics and plots for evaluating trained normalizing flows (numpy in, no TensorFlow)."""

from __future__ import annotations

from fedhex_hpc.evaluate.metrics import (
    Chi2Result,
    Estimate,
    KSResult,
    classifier_auc,
    histogram_chi2,
    kl_divergence,
    ks_statistic,
    mean_log_likelihood,
    per_feature_comparison,
)
from fedhex_hpc.evaluate.plots import (
    bounds_from_samples,
    plot_density_2d,
    plot_loss_curves,
    plot_marginals,
)

__all__ = [
    "Chi2Result",
    "Estimate",
    "KSResult",
    "bounds_from_samples",
    "classifier_auc",
    "histogram_chi2",
    "kl_divergence",
    "ks_statistic",
    "mean_log_likelihood",
    "per_feature_comparison",
    "plot_density_2d",
    "plot_loss_curves",
    "plot_marginals",
]
