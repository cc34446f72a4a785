"""Tests for fedhex_hpc.evaluate.anomaly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fedhex_hpc.evaluate.anomaly import (
    closure_auc,
    fpr_at_tpr,
    median_curves,
    roc,
    sculpting,
    sic_metrics,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


def separated(n_signal: int = 10, n_background: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Every signal score above every background score (distinct values)."""
    scores = np.r_[1000.0 + np.arange(n_signal), np.arange(float(n_background))]
    return scores, np.r_[np.ones(n_signal), np.zeros(n_background)]


def test_perfectly_separated_scores_give_the_hand_computed_metrics() -> None:
    scores, labels = separated()
    m = sic_metrics(scores, labels)
    assert m["auc"] == 1.0
    # the first point with background: every signal event, 1 of 100 background events
    assert m["max_sic"] == pytest.approx(1 / np.sqrt(0.01))
    # at least 25 background events above the cut: TPR 1, FPR 0.25
    assert m["max_sic_25"] == pytest.approx(1 / np.sqrt(0.25))
    assert m["sic_eff_0.2"] == np.inf and m["rejection_eff_0.3"] == np.inf
    assert m["curve"]["n_background"][-1] == 100


def test_the_fpr_cut_acts() -> None:
    scores, labels = separated()
    m = sic_metrics(scores, labels, fpr_min=0.05)
    assert m["max_sic"] == pytest.approx(1 / np.sqrt(0.06))
    assert np.isnan(sic_metrics(scores, labels, fpr_min=1.0)["max_sic"])


def test_background_count_cut_uses_the_effective_number_of_weighted_events() -> None:
    scores, labels = separated()
    doubled = np.where(labels == 0, 2.0, 1.0)  # the same count, twice the weight
    assert sic_metrics(scores, labels, doubled)["max_sic_25"] == pytest.approx(2.0)
    # one background event (the highest scored) carries most of the weight: even all
    # 100 events are only (99 + 100)**2 / (9999 + 100) < 4 effective events
    heavy = np.ones_like(scores)
    heavy[10 + 99] = 100.0
    curve = roc(scores, labels, heavy)
    assert curve["n_background"][-1] == pytest.approx(199**2 / 10099)
    assert np.isnan(sic_metrics(scores, labels, heavy)["max_sic_25"])
    assert sic_metrics(scores, labels, heavy, min_background=3)["max_sic_25"] > 0


def test_weights_act_like_repeated_events(rng: np.random.Generator) -> None:
    scores = rng.normal(size=300)
    labels = (rng.uniform(size=300) < 0.3).astype(float)
    counts = rng.integers(1, 4, size=300)
    weighted = sic_metrics(scores, labels, counts.astype(float))
    repeated = sic_metrics(np.repeat(scores, counts), np.repeat(labels, counts))
    for key in ("auc", "max_sic", "max_sic_25", "sic_eff_0.2", "rejection_eff_0.3"):
        assert weighted[key] == pytest.approx(repeated[key])


def test_gaussian_shift_matches_the_closed_forms(rng: np.random.Generator) -> None:
    d, n = 1.0, 20_000
    scores = np.r_[rng.normal(d, 1, n), rng.normal(0, 1, n)]
    labels = np.r_[np.ones(n), np.zeros(n)]
    m = sic_metrics(scores, labels)
    auc = stats.norm.cdf(d / np.sqrt(2))
    # the variance of an AUC is at most A (1 - A) / min(n_signal, n_background)
    assert abs(m["auc"] - auc) < 5 * np.sqrt(auc * (1 - auc) / n)
    for eff, key in ((0.2, "sic_eff_0.2"), (0.3, "rejection_eff_0.3")):
        fpr = stats.norm.sf(d + stats.norm.isf(eff))
        expected = eff / np.sqrt(fpr) if key.startswith("sic") else 1 / fpr
        # 5 sigma of the background count at that cut (plus the signal's, as large)
        assert m[key] == pytest.approx(expected, rel=10 / np.sqrt(n * fpr))
    # the lowest FPR keeping every signal event: cut at the lowest signal score
    assert fpr_at_tpr(m["curve"], 1.0) == np.mean(scores[n:] >= scores[:n].min())


def test_median_curves_on_hand_made_runs() -> None:
    tpr = np.linspace(0, 0.5, 101)
    runs = [
        {"tpr": tpr, "fpr": c * tpr**2, "n_background": c * tpr**2 * 1e6} for c in (1.0, 2.0, 4.0)
    ]
    grid = np.linspace(0.01, 0.5, 50)
    out = median_curves(runs, grid)
    # SIC = t / sqrt(c t**2) = 1 / sqrt(c) everywhere; quantiles 0.16/0.84 of c = 1, 2, 4
    assert out["sic"]["median"] == pytest.approx(np.full(50, 1 / np.sqrt(2)))
    assert out["sic"]["low"] == pytest.approx(np.full(50, 1 / np.sqrt(2 + 0.68 * 2)))
    assert out["sic"]["high"] == pytest.approx(np.full(50, 1 / np.sqrt(1 + 0.32)))
    assert out["rejection"]["median"] == pytest.approx(1 / (2 * grid**2))
    assert out["max_sic_median_curve"] == pytest.approx(1 / np.sqrt(2))
    assert out["max_sic_runs"] == pytest.approx([1, 1 / np.sqrt(2), 1 / 2])
    assert out["median_max_sic"] == pytest.approx(1 / np.sqrt(2))
    assert out["n_runs"] == 3 and out["sic"]["median"].shape == grid.shape


def test_median_band_brackets_the_median_of_noisy_runs(rng: np.random.Generator) -> None:
    runs = [
        sic_metrics(
            np.r_[rng.normal(1, 1, 500), rng.normal(0, 1, 5000)], np.r_[[1] * 500, [0] * 5000]
        )
        for _ in range(7)
    ]
    out = median_curves(runs, np.linspace(0.05, 1, 20))
    for name in ("sic", "rejection"):
        curves = out[name]
        assert np.all(curves["low"] <= curves["median"])
        assert np.all(curves["median"] <= curves["high"])
    assert out["median_max_sic"] == pytest.approx(np.median([r["max_sic"] for r in runs]))
    with pytest.raises(ValueError, match="tpr_grid"):
        median_curves(runs, np.array([0.5, 0.2]))


def test_closure_auc_band_holds_one_half_only_without_a_difference(
    rng: np.random.Generator,
) -> None:
    same = closure_auc(rng.normal(size=1000), rng.normal(size=1000), 100, seed=3)
    assert same["consistent"] and same["low"] < same["auc"] < same["high"]
    # 95 % of a normal AUC of standard deviation sqrt((n_a + n_b + 1) / (12 n_a n_b))
    assert same["high"] - same["low"] == pytest.approx(2 * 1.96 * np.sqrt(2001 / 12e6), rel=0.3)
    shifted = closure_auc(rng.normal(0.3, 1, 1000), rng.normal(size=1000), 100, seed=3)
    assert not shifted["consistent"] and shifted["low"] > 0.5
    again = closure_auc(rng.normal(size=50), rng.normal(size=50), seed=3, n_bootstrap=20)
    assert again["n_bootstrap"] == 20


def test_sculpting_flags_a_score_correlated_with_mjj(rng: np.random.Generator) -> None:
    n = 20_000
    mjj, reference = rng.uniform(3.3, 3.7, n), rng.uniform(3.3, 3.7, n)
    flat = sculpting(mjj, rng.normal(size=n), reference)
    assert set(flat) == {"top_20", "top_5", "top_1"}
    assert [flat[k]["n_selected"] for k in flat] == [4000, 1000, 200]
    assert all(r["p_value"] > 1e-3 and r["ndf"] == 19 for r in flat.values())
    sculpted = sculpting(mjj, mjj + rng.normal(0, 0.1, n), reference)
    assert sculpted["top_20"]["chi2_ndf"] > 10
    half = sculpting(mjj, rng.normal(size=n), reference, fractions=(0.5,), weights=np.full(n, 3.0))
    assert half["top_50"]["n_selected"] == n // 2


def test_bad_input_is_a_value_error_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="labels"):
        sic_metrics(np.arange(4.0), np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="class 1"):
        sic_metrics(np.arange(4.0), np.zeros(4))
    with pytest.raises(ValueError, match="weights"):
        sic_metrics(np.arange(4.0), np.array([0, 1, 0, 1]), -np.ones(4))
    with pytest.raises(ValueError, match="fractions"):
        sculpting(np.ones(3), np.ones(3), np.ones(3), fractions=(0.0,))
