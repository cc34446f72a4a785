"""Judging generated events at one label point against that point's truth sample.

Per feature: chi2/ndf of the binned counts (pooled errors) and KS with its p-value
(:func:`~fedhex_hpc.evaluate.metrics.per_feature_comparison`); shifts of the mean,
the width and the 10/50/90 % quantiles in units of the truth width, with bootstrap
errors. Jointly: a 2-d chi2 for two features, a classifier AUC with a
permutation p-value, and KL(truth || flow) where the density is exact.

The "1 %" goal per quantity (``|dmean|/sigma`` and ``|dsigma|/sigma``): **not met**
when the value exceeds the goal by more than twice its error, else **not
resolvable** when its error exceeds the goal, else **met** when it is within the
goal, else **not met**. A point's verdict is the worst over its features and both
quantities (not met > not resolvable > met).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedhex_hpc.evaluate.metrics import (
    classifier_auc_test,
    histogram_chi2_2d,
    per_feature_comparison,
)
from fedhex_hpc.studies.interpolation.spec import JudgeSpec

__all__ = ["QUANTILES", "VERDICTS", "histograms", "judge_events", "shifts", "verdict", "worst"]

QUANTILES = (0.1, 0.5, 0.9)
#: Verdicts from best to worst.
VERDICTS = ("met", "not resolvable", "not met")


def verdict(value: float, error: float, goal: float) -> str:
    """The goal verdict of one measured shift (see the module docstring)."""
    if not (np.isfinite(value) and np.isfinite(error)):
        return "not resolvable"
    if abs(value) > goal + 2.0 * error:
        return "not met"
    if error > goal:
        return "not resolvable"
    return "met" if abs(value) <= goal else "not met"


def worst(verdicts: list[str]) -> str:
    """The worst of several verdicts."""
    return max(verdicts, key=VERDICTS.index)


def _statistics(x: np.ndarray) -> np.ndarray:
    """Mean, width and quantiles of each row of ``x`` (shape ``(b, n)`` -> ``(b, 5)``)."""
    return np.column_stack(
        [x.mean(axis=1), x.std(axis=1, ddof=1), *np.quantile(x, QUANTILES, axis=1)]
    )


def shifts(
    truth: np.ndarray, candidate: np.ndarray, rng: np.random.Generator, bootstrap: int
) -> dict[str, tuple[float, float]]:
    """Shifts of mean, width and quantiles of one feature in units of the truth width.

    Returns:
        ``{"dmean", "dsigma", "dq10", "dq50", "dq90"}`` -> (value, bootstrap error);
        the truth's width is resampled too.
    """
    truth, candidate = np.asarray(truth, np.float64), np.asarray(candidate, np.float64)

    def relative(t: np.ndarray, c: np.ndarray) -> np.ndarray:
        st, sc = _statistics(t), _statistics(c)
        out = (sc - st) / st[:, 1:2]
        out[:, 1] = sc[:, 1] / st[:, 1] - 1.0
        return out

    value = relative(truth[None, :], candidate[None, :])[0]
    resampled = relative(
        truth[rng.integers(len(truth), size=(bootstrap, len(truth)))],
        candidate[rng.integers(len(candidate), size=(bootstrap, len(candidate)))],
    )
    error = resampled.std(axis=0, ddof=1)
    names = ("dmean", "dsigma", *(f"dq{round(100 * q)}" for q in QUANTILES))
    return {n: (float(v), float(e)) for n, v, e in zip(names, value, error, strict=True)}


def histograms(truth: np.ndarray, candidate: np.ndarray, bins: int) -> list[dict[str, Any]]:
    """Per feature: ``bins`` edges spanning the truth's 0.1-99.9 % range and the
    candidate's counts in them (with its event count ``n``)."""
    hists = []
    for j in range(truth.shape[1]):
        low, high = np.quantile(truth[:, j], [0.001, 0.999])
        edges = np.linspace(low, high, bins + 1)
        hists.append(
            {
                "edges": edges.tolist(),
                "counts": np.histogram(candidate[:, j], edges)[0].tolist(),
                "n": len(candidate),
            }
        )
    return hists


def judge_events(
    truth: np.ndarray,
    candidate: np.ndarray,
    features: list[str],
    spec: JudgeSpec,
    seeds: tuple[int, int],
    kl: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Every comparison of ``candidate`` events with ``truth`` events at one point.

    Args:
        truth: Truth events, ``(n, d)``.
        candidate: Events of the flow or a baseline, ``(m, d)``.
        features: Feature names.
        spec: Binning, bootstrap, classifier and goal settings.
        seeds: Seeds of the bootstrap and of the classifier test.
        kl: KL(truth || flow) and its error, where the density is exact.

    Returns:
        Per-feature metrics (``features``), ``chi2_2d_ndf``, ``auc``, ``auc_p``,
        ``kl``, ``kl_err``, the worst ``goal_mean``/``goal_sigma`` with errors, the
        ``verdict`` and the candidate's histograms (``hist``, for the plots).
    """
    per_feature = per_feature_comparison(candidate, truth, features, bins=spec.bins)
    rng = np.random.default_rng(seeds[0])
    verdicts, worst_mean, worst_sigma = [], (0.0, 0.0), (0.0, 0.0)
    for j, row in enumerate(per_feature):
        found = shifts(truth[:, j], candidate[:, j], rng, spec.bootstrap)
        for name, (value, error) in found.items():
            row[name], row[f"{name}_err"] = value, error
        for name in ("dmean", "dsigma"):
            verdicts.append(verdict(*found[name], spec.goal))
        if abs(found["dmean"][0]) >= abs(worst_mean[0]):
            worst_mean = found["dmean"]
        if abs(found["dsigma"][0]) >= abs(worst_sigma[0]):
            worst_sigma = found["dsigma"]
    auc = classifier_auc_test(
        candidate,
        truth,
        seed=seeds[1],
        permutations=spec.auc_permutations,
        max_events=spec.auc_events,
    )
    chi2_2d = (
        histogram_chi2_2d(candidate, truth, bins=max(2, spec.bins // 2))
        if len(features) == 2
        else None
    )
    return {
        "features": per_feature,
        "chi2_2d_ndf": chi2_2d.chi2 / chi2_2d.ndf if chi2_2d and chi2_2d.ndf else None,
        "chi2_2d_p": chi2_2d.p_value if chi2_2d else None,
        "auc": auc.statistic,
        "auc_p": auc.p_value,
        "kl": kl[0] if kl else None,
        "kl_err": kl[1] if kl else None,
        "goal_mean": abs(worst_mean[0]),
        "goal_mean_err": worst_mean[1],
        "goal_sigma": abs(worst_sigma[0]),
        "goal_sigma_err": worst_sigma[1],
        "verdict": worst(verdicts),
        "hist": histograms(truth, candidate, spec.bins),
    }
