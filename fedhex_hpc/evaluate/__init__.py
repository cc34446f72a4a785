"""Statistics and plots for evaluating trained normalizing flows (numpy in, no TensorFlow)."""

from __future__ import annotations

from fedhex_hpc.evaluate.metrics import (
    Chi2Result,
    Estimate,
    KSResult,
    PermutationResult,
    classifier_auc,
    classifier_auc_test,
    histogram_chi2,
    histogram_chi2_2d,
    kl_divergence,
    ks_statistic,
    mean_log_likelihood,
    per_feature_comparison,
    permutation_p_value,
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
    "PermutationResult",
    "bounds_from_samples",
    "classifier_auc",
    "classifier_auc_test",
    "histogram_chi2",
    "histogram_chi2_2d",
    "kl_divergence",
    "ks_statistic",
    "mean_log_likelihood",
    "per_feature_comparison",
    "permutation_p_value",
    "plot_density_2d",
    "plot_loss_curves",
    "plot_marginals",
]
