"""Anomaly-detection figures of merit: ROC, significance improvement, closure, sculpting.

Scores are "higher = more signal-like"; labels are 1 for signal and 0 for
background; optional event weights are non-negative. The true positive rate
(TPR, signal efficiency) and false positive rate (FPR, background efficiency)
of a cut ``score >= t`` are weighted fractions (scikit-learn's ``roc_curve``).
The significance improvement is SIC = TPR / sqrt(FPR) and the background
rejection 1 / FPR; both are infinite where no background passes.

Operating points with very few background events make SIC a fluctuation, so the
maximum SIC comes with cuts: ``max_sic`` takes points with FPR > ``fpr_min``
(CATHODE's 1.84e-5); ``max_sic_25`` in addition needs at least
``min_background`` background events above the cut ("Back to the Roots": 25).
With weights that count is the effective number ``(sum w)**2 / sum w**2`` of the
background events above the cut: the plain count for unit weights, smaller when
a few events carry most of the weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from fedhex_hpc.evaluate._validation import as_1d
from fedhex_hpc.evaluate.metrics import histogram_chi2
from fedhex_hpc.seeding import rng

__all__ = [
    "FPR_MIN",
    "MIN_BACKGROUND",
    "closure_auc",
    "fpr_at_tpr",
    "max_sic",
    "median_curves",
    "roc",
    "sculpting",
    "sic_metrics",
]

#: CATHODE's lower FPR bound of the maximum SIC.
FPR_MIN = 1.84e-5
#: Back to the Roots' minimum number of background events above the cut.
MIN_BACKGROUND = 25


def _events(
    scores: object, labels: object, weights: object | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked scores, 0/1 labels (both present) and non-negative weights."""
    s = as_1d(scores, "scores")
    y = as_1d(labels, "labels")
    if y.shape != s.shape or not np.all(np.isin(y, (0, 1))):
        raise ValueError(f"labels: expected {len(s)} labels of 0 or 1, got shape {y.shape}")
    w = np.ones_like(s) if weights is None else as_1d(weights, "weights")
    if w.shape != s.shape or np.any(w < 0):
        raise ValueError(f"weights: expected {len(s)} non-negative weights, got shape {w.shape}")
    for label in (0, 1):
        if not np.sum(w[y == label]) > 0:
            raise ValueError(f"labels: expected class {label} events with a positive weight")
    return s, y.astype(np.int64), w


def roc(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The weighted ROC curve with the background count above every threshold.

    Args:
        scores: Classifier scores ``(n,)``.
        labels: 1 for signal, 0 for background ``(n,)``.
        weights: Non-negative event weights ``(n,)`` or None.

    Returns:
        ``tpr``, ``fpr``, ``threshold`` (a point keeps ``score >= threshold``; the
        first point keeps nothing) and ``n_background`` (the effective number of
        background events kept), one entry per distinct score plus the first.

    Raises:
        ValueError: On empty or non-finite input, labels other than 0/1, one class
            missing or negative weights.
    """
    s, y, w = _events(scores, labels, weights)
    fpr, tpr, threshold = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    background = s[y == 0]
    order = np.argsort(-background, kind="stable")
    w_b = w[y == 0][order]
    sum_w = np.concatenate([[0.0], np.cumsum(w_b)])
    sum_w2 = np.concatenate([[0.0], np.cumsum(w_b**2)])
    kept = len(background) - np.searchsorted(background[order][::-1], threshold, side="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        n_background = np.where(sum_w2[kept] > 0, sum_w[kept] ** 2 / sum_w2[kept], 0.0)
    return {"tpr": tpr, "fpr": fpr, "threshold": threshold, "n_background": n_background}


def _sic(tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    """TPR / sqrt(FPR): infinite where FPR is 0 and TPR is not, NaN where both are."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return tpr / np.sqrt(fpr)


def _rejection(fpr: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 1.0 / fpr


def max_sic(
    curve: dict[str, np.ndarray],
    fpr_min: float = FPR_MIN,
    min_background: float | None = None,
) -> float:
    """The largest SIC of a :func:`roc` curve among points with FPR > ``fpr_min``.

    With ``min_background`` the points also need at least that (effective) number
    of background events above the cut. NaN when no point qualifies.
    """
    tpr, fpr = np.asarray(curve["tpr"]), np.asarray(curve["fpr"])
    ok = fpr > fpr_min
    if min_background is not None:
        ok &= np.asarray(curve["n_background"]) >= min_background
    return float(np.max(_sic(tpr[ok], fpr[ok]))) if np.any(ok) else float("nan")


def fpr_at_tpr(curve: dict[str, np.ndarray], tpr: float | np.ndarray) -> np.ndarray:
    """The FPR of a ROC curve at signal efficiencies ``tpr``, linearly interpolated.

    Where the curve has several points of one TPR the lowest FPR counts (the best
    cut reaching that efficiency).
    """
    tprs, first = np.unique(np.asarray(curve["tpr"]), return_index=True)
    return np.interp(tpr, tprs, np.asarray(curve["fpr"])[first])


def sic_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    fpr_min: float = FPR_MIN,
    min_background: float = MIN_BACKGROUND,
) -> dict[str, Any]:
    """The scalar figures of merit of one classifier on labelled test events.

    Args:
        scores: Classifier scores ``(n,)``, higher = more signal-like.
        labels: 1 for signal, 0 for background ``(n,)``.
        weights: Non-negative event weights ``(n,)`` or None.
        fpr_min: Lower FPR bound of both maximum SICs.
        min_background: Background events (effective count) ``max_sic_25`` needs
            above the cut.

    Returns:
        ``auc`` (weighted ROC AUC), ``max_sic`` (FPR > ``fpr_min``), ``max_sic_25``
        (and at least ``min_background`` background events), ``sic_eff_0.2`` (SIC
        at signal efficiency 0.2), ``rejection_eff_0.3`` (1/FPR at efficiency 0.3),
        all floats (infinite when no background passes, NaN for a maximum no point
        qualifies for), and ``curve``: the :func:`roc` arrays.

    Raises:
        ValueError: As :func:`roc`.
    """
    s, y, w = _events(scores, labels, weights)
    curve = roc(s, y, w)
    fpr = fpr_at_tpr(curve, np.array([0.2, 0.3]))
    return {
        "auc": float(roc_auc_score(y, s, sample_weight=w)),
        "max_sic": max_sic(curve, fpr_min),
        "max_sic_25": max_sic(curve, fpr_min, min_background),
        "sic_eff_0.2": float(_sic(np.float64(0.2), fpr[0])),
        "rejection_eff_0.3": float(_rejection(fpr[1])),
        "curve": curve,
    }


def median_curves(
    curves: Sequence[dict[str, Any]],
    tpr_grid: np.ndarray,
    fpr_min: float = FPR_MIN,
    min_background: float = MIN_BACKGROUND,
    band: tuple[float, float] = (0.16, 0.84),
) -> dict[str, Any]:
    """Median SIC and rejection curves over runs with their band, on a common TPR grid.

    At every grid TPR the runs' FPRs are interpolated (:func:`fpr_at_tpr`) and
    their median and ``band`` quantiles taken; SIC and rejection follow from those
    FPRs. Both fall as the FPR rises, so the median SIC is the SIC of the median
    FPR and the low SIC edge comes from the high FPR quantile.

    Args:
        curves: Per run a :func:`roc` curve or a :func:`sic_metrics` result (its
            ``curve`` is used).
        tpr_grid: Increasing signal efficiencies in (0, 1].
        fpr_min: As :func:`max_sic`, for every maximum below.
        min_background: As :func:`sic_metrics`, for ``median_max_sic_25``.
        band: Lower and upper quantile of the band.

    Returns:
        ``tpr`` (the grid), ``sic`` and ``rejection`` (each ``median``, ``low``,
        ``high`` arrays on the grid), ``fpr_median``, ``max_sic_median_curve`` (the
        largest median SIC at a median FPR > ``fpr_min``), ``max_sic_runs`` and
        ``max_sic_25_runs`` (per run), ``median_max_sic`` and ``median_max_sic_25``
        (their medians) and ``n_runs``.

    Raises:
        ValueError: No curves, or a grid that is not increasing inside (0, 1].
    """
    if not curves:
        raise ValueError("curves: expected at least one run, got none")
    grid = as_1d(tpr_grid, "tpr_grid")
    if np.any(np.diff(grid) <= 0) or grid[0] <= 0 or grid[-1] > 1:
        raise ValueError("tpr_grid: expected increasing efficiencies inside (0, 1]")
    rocs = [c.get("curve", c) for c in curves]
    fprs = np.array([fpr_at_tpr(c, grid) for c in rocs])
    low_q, high_q = band
    median, f_low, f_high = (np.quantile(fprs, q, axis=0) for q in (0.5, low_q, high_q))
    sic = _sic(grid, median)
    ok = median > fpr_min
    runs = [max_sic(c, fpr_min) for c in rocs]
    runs_25 = [max_sic(c, fpr_min, min_background) for c in rocs]
    return {
        "tpr": grid,
        "fpr_median": median,
        "sic": {"median": sic, "low": _sic(grid, f_high), "high": _sic(grid, f_low)},
        "rejection": {
            "median": _rejection(median),
            "low": _rejection(f_high),
            "high": _rejection(f_low),
        },
        "max_sic_median_curve": float(np.max(sic[ok])) if np.any(ok) else float("nan"),
        "max_sic_runs": runs,
        "max_sic_25_runs": runs_25,
        "median_max_sic": _nanmedian(runs),
        "median_max_sic_25": _nanmedian(runs_25),
        "n_runs": len(rocs),
    }


def _nanmedian(values: list[float]) -> float:
    """Median of the finite-or-infinite values (NaN, "no point qualified", left out)."""
    kept = [v for v in values if not np.isnan(v)]
    return float(np.median(kept)) if kept else float("nan")


def closure_auc(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    n_bootstrap: int = 200,
    *,
    seed: int,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
    level: float = 0.95,
) -> dict[str, Any]:
    """AUC of telling held-out events ``a`` (e.g. data) from ``b`` (e.g. template), with a band.

    Without anything to find the AUC should be consistent with 0.5. The band is
    the central ``level`` interval of the AUCs of ``n_bootstrap`` bootstrap
    resamples (each sample resampled with replacement at its own size).

    Args:
        scores_a: Scores of the events labelled 1.
        scores_b: Scores of the events labelled 0.
        n_bootstrap: Resamples (at least 1).
        seed: Seed of the resampling (stream ``closure_bootstrap``).
        weights_a: Optional non-negative weights of ``a``.
        weights_b: Optional non-negative weights of ``b``.
        level: Coverage of the band, in (0, 1).

    Returns:
        ``auc``, ``low``, ``high``, ``consistent`` (0.5 inside the band),
        ``n_bootstrap`` and ``level``.

    Raises:
        ValueError: On empty or non-finite input, negative weights, fewer than one
            resample or a level outside (0, 1).
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap: expected at least 1, got {n_bootstrap}")
    if not 0 < level < 1:
        raise ValueError(f"level: expected a coverage in (0, 1), got {level}")
    a, b = as_1d(scores_a, "scores_a"), as_1d(scores_b, "scores_b")
    parts = []
    for name, x, weights in (("weights_a", a, weights_a), ("weights_b", b, weights_b)):
        wx = np.ones_like(x) if weights is None else as_1d(weights, name)
        if wx.shape != x.shape:
            raise ValueError(f"{name}: expected shape {x.shape}, got {wx.shape}")
        parts.append(wx)
    s, y, w = _events(
        np.concatenate([a, b]), np.repeat([1, 0], [len(a), len(b)]), np.concatenate(parts)
    )
    auc = float(roc_auc_score(y, s, sample_weight=w))
    draw = rng(seed, "closure_bootstrap")
    boot = np.empty(n_bootstrap)
    for i in range(n_bootstrap):
        # a resample with replacement = each event weighted by how often it is drawn
        counts = np.concatenate(
            [np.bincount(draw.integers(0, len(x), len(x)), minlength=len(x)) for x in (a, b)]
        )
        boot[i] = roc_auc_score(y, s, sample_weight=w * counts)
    low, high = (float(v) for v in np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]))
    return {
        "auc": auc,
        "low": low,
        "high": high,
        "consistent": bool(low <= 0.5 <= high),
        "n_bootstrap": n_bootstrap,
        "level": level,
    }


def sculpting(
    mjj: np.ndarray,
    scores: np.ndarray,
    reference_mjj: np.ndarray,
    fractions: Sequence[float] = (0.2, 0.05, 0.01),
    bins: int | np.ndarray = 20,
    weights: np.ndarray | None = None,
    reference_weights: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Does a cut on the score sculpt the mjj spectrum? chi2/ndf after keeping the top scores.

    For every fraction ``f`` the events of highest score holding a share ``f`` of
    the total weight are kept (ties at the edge broken by input order) and their
    mjj counts compared with the reference background's
    (:func:`~fedhex_hpc.evaluate.metrics.histogram_chi2`, shapes compared: both
    scaled to equal totals). The bins span the reference's mjj range. The test
    assumes independent samples: pass a reference that does not contain the
    scored events where one exists.

    Args:
        mjj: mjj of the scored events ``(n,)``.
        scores: Their scores ``(n,)``.
        reference_mjj: mjj of the reference background ``(m,)``.
        fractions: Shares of the events to keep, each in (0, 1].
        bins: Number of bins or the edges.
        weights: Optional non-negative weights of the scored events.
        reference_weights: Optional weights of the reference events.

    Returns:
        Per fraction, under ``top_<percent>`` (``top_20``, ``top_5``, ``top_1``):
        ``fraction``, ``n_selected``, ``chi2``, ``ndf``, ``chi2_ndf`` (NaN for no
        degrees of freedom) and ``p_value``.

    Raises:
        ValueError: On empty or non-finite input, mismatched lengths, negative
            weights or a fraction outside (0, 1].
    """
    x = as_1d(mjj, "mjj")
    s = as_1d(scores, "scores")
    if s.shape != x.shape:
        raise ValueError(f"scores: expected shape {x.shape}, got {s.shape}")
    w = np.ones_like(s) if weights is None else as_1d(weights, "weights")
    if w.shape != s.shape or np.any(w < 0) or not np.sum(w) > 0:
        raise ValueError(f"weights: expected {len(s)} non-negative weights with a positive sum")
    reference = as_1d(reference_mjj, "reference_mjj")
    edges = np.histogram_bin_edges(reference, bins=bins)
    order = np.argsort(-s, kind="stable")
    share = np.cumsum(w[order]) / np.sum(w)
    out = {}
    for f in fractions:
        if not 0 < f <= 1:
            raise ValueError(f"fractions: expected shares in (0, 1], got {f}")
        # the relative slack keeps an event whose share is f up to rounding of the sum
        n_keep = int(np.searchsorted(share, f * (1 + 1e-12), side="right"))
        keep = order[: max(1, n_keep)]
        result = histogram_chi2(
            x[keep], reference, bins=edges, weights_a=w[keep], weights_b=reference_weights
        )
        out[f"top_{100 * f:g}"] = {
            "fraction": float(f),
            "n_selected": len(keep),
            "chi2": result.chi2,
            "ndf": result.ndf,
            "chi2_ndf": result.chi2 / result.ndf if result.ndf > 0 else float("nan"),
            "p_value": result.p_value,
        }
    return out
