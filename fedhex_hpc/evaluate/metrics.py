"""Goodness-of-fit statistics for trained flows, computed on plain numpy arrays.

Log densities are in nats. Every statistic comes with an uncertainty or a p-value so
that differences between runs can be judged against their noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from fedhex_hpc.evaluate._validation import (
    as_1d,
    as_2d,
    check_names,
    check_same_features,
    common_edges,
)

__all__ = [
    "Chi2Result",
    "Estimate",
    "KSResult",
    "PermutationResult",
    "classifier_auc",
    "classifier_auc_test",
    "histogram_chi2",
    "histogram_chi2_2d",
    "kl_divergence",
    "ks_statistic",
    "mean_log_likelihood",
    "per_feature_comparison",
    "permutation_p_value",
]

_MIN_EVENTS_PER_CLASS = 10


class _Result:
    """Mixin giving the frozen result dataclasses a plain-dict view."""

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict (for JSON or pandas)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Estimate(_Result):
    """A Monte Carlo estimate and its standard error."""

    value: float
    stderr: float


@dataclass(frozen=True)
class Chi2Result(_Result):
    """A binned two-sample chi-square statistic, its degrees of freedom and p-value."""

    chi2: float
    ndf: int
    p_value: float


@dataclass(frozen=True)
class KSResult(_Result):
    """A two-sample Kolmogorov–Smirnov statistic and its p-value."""

    statistic: float
    p_value: float


@dataclass(frozen=True)
class PermutationResult(_Result):
    """A two-sample statistic, its permutation p-value and the number of permutations."""

    statistic: float
    p_value: float
    permutations: int


def _weighted_mean(x: np.ndarray, w: np.ndarray) -> Estimate:
    """Weighted mean (weights with a positive sum) with a sandwich standard error.

    The variance ``sum(w**2 (x - mean)**2) / sum(w)**2`` stays non-negative when some
    weights are negative; Bessel-correcting it with the effective sample size n_eff
    makes unit weights give exactly ``std(ddof=1) / sqrt(n)``.
    """
    total = float(np.sum(w))
    mean = float(np.sum(w * x) / total)
    n_eff = total**2 / float(np.sum(w**2))
    if n_eff <= 1.0:
        return Estimate(mean, float("inf"))
    var = float(np.sum(w**2 * (x - mean) ** 2)) / total**2 * n_eff / (n_eff - 1.0)
    return Estimate(mean, float(np.sqrt(var)))


def mean_log_likelihood(log_q: np.ndarray, weights: np.ndarray | None = None) -> Estimate:
    """Mean test log-likelihood of a model with its standard error.

    Args:
        log_q: Model log densities ``log q(x_i)`` of test events, shape ``(n,)``.
        weights: Optional per-event weights, shape ``(n,)``. Negative Monte Carlo
            weights are allowed as long as the sum is positive; the standard error
            then uses the effective sample size ``sum(w)**2 / sum(w**2)``.

    Returns:
        The (weighted) mean in nats and its standard error. If any ``log_q`` is not
        finite the mean is returned as numpy computes it (``-inf`` or NaN) with an
        infinite standard error.

    Raises:
        ValueError: If the arrays are empty, not 1-d, of different lengths, the weights
            are not finite or sum to a non-positive value.
    """
    log_q = as_1d(log_q, "log_q", finite=False)
    if weights is None:
        w = np.ones_like(log_q)
    else:
        w = as_1d(weights, "weights")
        if w.shape != log_q.shape:
            raise ValueError(f"weights: expected shape {log_q.shape}, got {w.shape}")
    total = float(np.sum(w))
    if total <= 0.0:
        raise ValueError(f"weights: expected a positive sum, got {total:g}")
    if not np.all(np.isfinite(log_q)):
        with np.errstate(invalid="ignore"):
            return Estimate(float(np.sum(w * log_q) / total), float("inf"))
    return _weighted_mean(log_q, w)


def kl_divergence(log_p: np.ndarray, log_q: np.ndarray) -> Estimate:
    """Monte Carlo estimate of KL(p_target || q_model) from samples of the target.

    Uses the non-negative, low-variance estimator ``mean((r - 1) - log r)`` with
    ``r = q / p``, evaluated as ``expm1(log r) - log r``. Identical densities give
    exactly zero.

    Args:
        log_p: Target log densities at samples drawn from the target, shape ``(n,)``.
        log_q: Model log densities at the same samples, shape ``(n,)``.

    Returns:
        The estimate in nats with standard error ``std / sqrt(n)``. If the model gives a
        non-finite log density anywhere the value and its error are ``inf``.

    Raises:
        ValueError: If the arrays are empty, not 1-d, of different lengths, or ``log_p``
            is not finite (target samples must have non-zero target density).
    """
    log_p = as_1d(log_p, "log_p")
    log_q = as_1d(log_q, "log_q", finite=False)
    if log_q.shape != log_p.shape:
        raise ValueError(f"log_q: expected shape {log_p.shape}, got {log_q.shape}")
    if not np.all(np.isfinite(log_q)):
        return Estimate(float("inf"), float("inf"))
    log_r = log_q - log_p
    with np.errstate(over="ignore"):
        terms = np.expm1(log_r) - log_r
    if not np.all(np.isfinite(terms)):
        return Estimate(float("inf"), float("inf"))
    return _weighted_mean(terms, np.ones_like(terms))


def _weighted_histogram(
    x: np.ndarray, weights: np.ndarray | None, edges: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin sums of weights and of squared weights (unit weights when None)."""
    w = np.ones_like(x) if weights is None else as_1d(weights, name)
    if w.shape != x.shape:
        raise ValueError(f"{name}: expected shape {x.shape}, got {w.shape}")
    return np.histogram(x, bins=edges, weights=w)[0], np.histogram(x, bins=edges, weights=w**2)[0]


def _bin_precision(sums: np.ndarray, sums_sq: np.ndarray, total: float) -> np.ndarray:
    """``total / k_i`` with ``k_i = sum(w**2) / sum(w)`` in bin i (global ratio if unusable).

    Under the null hypothesis ``Var(s_i / total) = p_i k_i / total``; for unit weights
    ``k_i = 1`` and the precision is the event count ``N``.
    """
    k = np.full_like(sums, float(np.sum(sums_sq)) / total)
    ok = (sums > 0) & (sums_sq > 0)
    k[ok] = sums_sq[ok] / sums[ok]
    return total / k


def _pooled_chi2(
    s1: np.ndarray, v1: np.ndarray, s2: np.ndarray, v2: np.ndarray
) -> tuple[float, int]:
    """Chi2 of two histograms scaled to equal totals, with pooled per-bin variances.

    ``s`` are sums of weights and ``v`` sums of squared weights per bin. The expected
    fraction ``p_i`` is the precision-weighted mean of both histograms, so for unit
    weights this is exactly the standard statistic
    ``sum_i (sqrt(N2/N1) n1_i - sqrt(N1/N2) n2_i)**2 / (n1_i + n2_i)``.
    """
    t1, t2 = float(np.sum(s1)), float(np.sum(s2))
    if t1 <= 0.0 or t2 <= 0.0:
        raise ValueError(
            f"a, b: expected a positive sum of weights inside the binning, got {t1:g} and {t2:g}"
        )
    f1, f2 = s1 / t1, s2 / t2
    a1, a2 = _bin_precision(s1, v1, t1), _bin_precision(s2, v2, t2)
    p = (a1 * f1 + a2 * f2) / (a1 + a2)
    used = p > 0
    var = p[used] * (1.0 / a1[used] + 1.0 / a2[used])
    chi2 = float(np.sum((f1[used] - f2[used]) ** 2 / var))
    return chi2, int(np.count_nonzero(used)) - 1


def histogram_chi2(
    a: np.ndarray,
    b: np.ndarray,
    bins: int | np.ndarray = 50,
    range: tuple[float, float] | None = None,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
) -> Chi2Result:
    """Two-sample chi-square test on binned raw counts (or sums of weights) of one feature.

    Unweighted samples of sizes ``N1``, ``N2`` (counted inside the binning) give the
    standard statistic ``sum_i (sqrt(N2/N1) n1_i - sqrt(N1/N2) n2_i)**2 / (n1_i + n2_i)``
    over non-empty bins. Weighted samples (a missing weight array means unit weights)
    use sums of weights scaled to equal totals; bin variances are pooled between the
    two histograms with the per-bin weight scale ``sum(w**2) / sum(w)``, which reduces
    exactly to the unweighted statistic for unit weights and avoids the upward bias of
    using each bin's own ``sum(w**2)`` in sparsely populated bins. Negative weights are
    allowed; bins with a non-positive pooled content are skipped.

    Args:
        a: First sample, shape ``(n,)``.
        b: Second sample, shape ``(m,)``.
        bins: Number of bins or explicit bin edges (as for ``numpy.histogram``).
        range: Binning range; the union of both samples when None. Events outside the
            binning are ignored.
        weights_a: Optional weights of ``a``, shape ``(n,)``.
        weights_b: Optional weights of ``b``, shape ``(m,)``.

    Returns:
        The statistic, ``ndf = used bins - 1`` and the p-value (1 when ``ndf`` is 0).

    Raises:
        ValueError: On empty, non-1-d or non-finite input, mismatched weight shapes or
            a non-positive sum of weights inside the binning.
    """
    a = as_1d(a, "a")
    b = as_1d(b, "b")
    edges = common_edges(a, b, bins, range)
    chi2, ndf = _pooled_chi2(
        *_weighted_histogram(a, weights_a, edges, "weights_a"),
        *_weighted_histogram(b, weights_b, edges, "weights_b"),
    )
    p_value = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else 1.0
    return Chi2Result(chi2=chi2, ndf=ndf, p_value=p_value)


def histogram_chi2_2d(a: np.ndarray, b: np.ndarray, bins: int = 20) -> Chi2Result:
    """Two-sample chi-square test on the joint 2-d histogram of two ``(n, 2)`` samples.

    The bins span the union of both samples (``bins`` per axis); the statistic is the
    one of :func:`histogram_chi2` over the non-empty cells of the flattened grid.

    Args:
        a: First sample, shape ``(n, 2)``.
        b: Second sample, shape ``(m, 2)``.
        bins: Bins per axis.

    Returns:
        The statistic, ``ndf = used cells - 1`` and the p-value (1 when ``ndf`` is 0).

    Raises:
        ValueError: On empty or non-finite input, or samples that are not 2-d with
            two features.
    """
    a = as_2d(a, "a")
    b = as_2d(b, "b")
    check_same_features(a, b, "a", "b")
    if a.shape[1] != 2:
        raise ValueError(f"a: expected 2 features, got {a.shape[1]}")
    edges = [common_edges(a[:, j], b[:, j], bins) for j in range(2)]
    ha = np.histogram2d(a[:, 0], a[:, 1], bins=edges)[0].ravel()
    hb = np.histogram2d(b[:, 0], b[:, 1], bins=edges)[0].ravel()
    chi2, ndf = _pooled_chi2(ha, ha, hb, hb)
    p_value = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else 1.0
    return Chi2Result(chi2=chi2, ndf=ndf, p_value=p_value)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> KSResult:
    """Two-sample Kolmogorov–Smirnov test of one feature (``scipy.stats.ks_2samp``).

    Args:
        a: First sample, shape ``(n,)``.
        b: Second sample, shape ``(m,)``.

    Returns:
        The KS statistic (maximum CDF distance) and its p-value.

    Raises:
        ValueError: On empty, non-1-d or non-finite input.
    """
    result = stats.ks_2samp(as_1d(a, "a"), as_1d(b, "b"))
    return KSResult(statistic=float(result.statistic), p_value=float(result.pvalue))


def per_feature_comparison(
    generated: np.ndarray,
    reference: np.ndarray,
    names: list[str],
    bins: int = 50,
) -> list[dict[str, Any]]:
    """Chi-square and KS comparison of each feature of generated and reference events.

    Args:
        generated: Events sampled from the model, shape ``(n, d)``.
        reference: Reference events, shape ``(m, d)``.
        names: One name per feature.
        bins: Number of bins for the chi-square test.

    Returns:
        One dict per feature with keys ``name``, ``chi2``, ``ndf``, ``chi2_ndf`` (NaN if
        ``ndf`` is 0), ``chi2_p``, ``ks`` and ``ks_p``.

    Raises:
        ValueError: On empty or non-finite input, mismatched feature counts or a wrong
            number of names.
    """
    generated = as_2d(generated, "generated")
    reference = as_2d(reference, "reference")
    check_same_features(generated, reference, "generated", "reference")
    names = check_names(names, generated.shape[1])
    rows = []
    for j, name in enumerate(names):
        chi2 = histogram_chi2(generated[:, j], reference[:, j], bins=bins)
        ks = ks_statistic(generated[:, j], reference[:, j])
        rows.append(
            {
                "name": name,
                "chi2": chi2.chi2,
                "ndf": chi2.ndf,
                "chi2_ndf": chi2.chi2 / chi2.ndf if chi2.ndf > 0 else float("nan"),
                "chi2_p": chi2.p_value,
                "ks": ks.statistic,
                "ks_p": ks.p_value,
            }
        )
    return rows


def _hanley_mcneil_stderr(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley & McNeil, Radiology 143 (1982) 29)."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc**2 / (1.0 + auc)
    var = (auc * (1.0 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return float(np.sqrt(max(var, 0.0)))


def classifier_auc(
    generated: np.ndarray,
    reference: np.ndarray,
    seed: int,
    max_events: int = 50_000,
) -> Estimate:
    """Classifier two-sample test: how well can a classifier tell model from reference?

    Generated events are labelled 1 and reference events 0. Both classes are subsampled
    to the same size (at most ``max_events // 2`` each), split 50/50 stratified, a
    gradient-boosted tree classifier is trained on one half and its ROC AUC measured on
    the other. An AUC of 0.5 means the samples are indistinguishable.

    Args:
        generated: Events sampled from the model, shape ``(n, d)``.
        reference: Reference events, shape ``(m, d)``.
        seed: Seed for subsampling, the split and the classifier (any non-negative
            integer; scikit-learn takes it modulo 2**32).
        max_events: Maximum total number of events used (both classes together).

    Returns:
        The held-out AUC with its Hanley–McNeil standard error.

    Raises:
        ValueError: On empty or non-finite input, mismatched feature counts or fewer
            than 10 events per class.
    """
    generated = as_2d(generated, "generated")
    reference = as_2d(reference, "reference")
    check_same_features(generated, reference, "generated", "reference")
    per_class = min(len(generated), len(reference), max_events // 2)
    if per_class < _MIN_EVENTS_PER_CLASS:
        raise ValueError(
            f"generated, reference, max_events: expected at least {_MIN_EVENTS_PER_CLASS} "
            f"events per class, got {per_class}"
        )
    seed = seed % 2**32
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [
            generated[rng.choice(len(generated), per_class, replace=False)],
            reference[rng.choice(len(reference), per_class, replace=False)],
        ]
    )
    y = np.repeat([1, 0], per_class)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.5, stratify=y, random_state=seed
    )
    clf = HistGradientBoostingClassifier(
        max_iter=100, max_leaf_nodes=15, early_stopping=False, random_state=seed
    )
    # One OpenMP thread: fast enough at these sizes, and multi-threaded tree building
    # slows down by orders of magnitude when the node's cores are shared or busy.
    with threadpool_limits(limits=1, user_api="openmp"):
        clf.fit(x_train, y_train)
        scores = clf.predict_proba(x_test)[:, 1]
    auc = float(roc_auc_score(y_test, scores))
    n_pos = int(np.count_nonzero(y_test))
    return Estimate(auc, _hanley_mcneil_stderr(auc, n_pos, len(y_test) - n_pos))


def permutation_p_value(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    permutations: int,
    seed: int,
) -> PermutationResult:
    """A two-sample statistic (larger = more different) and its permutation p-value.

    The pooled events are relabelled at random ``permutations`` times, keeping both
    sample sizes; the p-value is ``(1 + #{permuted >= observed}) / (1 + permutations)``,
    which is valid (never anti-conservative) for any number of permutations.

    Args:
        a: First sample, shape ``(n, d)``.
        b: Second sample, shape ``(m, d)``.
        statistic: ``statistic(a, b)``, larger when the samples differ more.
        permutations: Number of relabellings (at least 1).
        seed: Seed of the relabellings.

    Raises:
        ValueError: On empty input, mismatched feature counts or fewer than 1 permutation.
    """
    a = as_2d(a, "a")
    b = as_2d(b, "b")
    check_same_features(a, b, "a", "b")
    if permutations < 1:
        raise ValueError(f"permutations: expected at least 1, got {permutations}")
    observed = float(statistic(a, b))
    pooled = np.concatenate([a, b])
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(permutations):
        order = rng.permutation(len(pooled))
        exceed += statistic(pooled[order[: len(a)]], pooled[order[len(a) :]]) >= observed
    return PermutationResult(observed, (1.0 + exceed) / (1.0 + permutations), permutations)


def classifier_auc_test(
    generated: np.ndarray,
    reference: np.ndarray,
    seed: int,
    permutations: int = 19,
    max_events: int = 50_000,
) -> PermutationResult:
    """The classifier two-sample AUC of :func:`classifier_auc` with a permutation p-value.

    The AUC's null distribution depends on the sizes and the classifier, so the
    p-value comes from refitting the classifier on relabelled pooled events
    (:func:`permutation_p_value`) rather than from a normal approximation.

    Args:
        generated: Events sampled from the model, shape ``(n, d)``.
        reference: Reference events, shape ``(m, d)``.
        seed: Seed of the relabellings and of each classifier.
        permutations: Number of relabellings.
        max_events: Maximum events per fit (both classes together).

    Raises:
        ValueError: As :func:`classifier_auc` and :func:`permutation_p_value`.
    """

    def auc(a: np.ndarray, b: np.ndarray) -> float:
        return classifier_auc(a, b, seed=seed, max_events=max_events).value

    return permutation_p_value(generated, reference, auc, permutations, seed)
