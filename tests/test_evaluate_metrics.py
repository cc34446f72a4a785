"""Tests for fedhex_hpc.evaluate.metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fedhex_hpc.evaluate import (
    Estimate,
    classifier_auc,
    histogram_chi2,
    kl_divergence,
    ks_statistic,
    mean_log_likelihood,
    per_feature_comparison,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def test_estimate_to_dict() -> None:
    assert Estimate(1.5, 0.25).to_dict() == {"value": 1.5, "stderr": 0.25}


def test_kl_identical_densities_is_exactly_zero(rng: np.random.Generator) -> None:
    log_p = stats.norm.logpdf(rng.normal(size=1000))
    assert kl_divergence(log_p, log_p.copy()) == Estimate(0.0, 0.0)


def test_kl_matches_gaussian_closed_form(rng: np.random.Generator) -> None:
    mu_q, sigma_q = 0.5, 1.2
    x = rng.normal(size=200_000)
    est = kl_divergence(stats.norm.logpdf(x), stats.norm.logpdf(x, mu_q, sigma_q))
    exact = np.log(sigma_q) + (1.0 + mu_q**2) / (2.0 * sigma_q**2) - 0.5
    assert est.stderr > 0
    assert abs(est.value - exact) < 3 * est.stderr


@pytest.mark.parametrize("bad", [-np.inf, np.nan, np.inf])
def test_kl_non_finite_model_gives_inf(bad: float) -> None:
    log_p = np.zeros(5)
    log_q = np.array([0.0, -1.0, bad, 0.5, 0.1])
    assert kl_divergence(log_p, log_q).value == np.inf


def test_mean_log_likelihood_stderr(rng: np.random.Generator) -> None:
    log_q = rng.normal(-2.0, 0.7, size=5000)
    est = mean_log_likelihood(log_q)
    assert est.value == pytest.approx(log_q.mean())
    assert est.stderr == pytest.approx(log_q.std(ddof=1) / np.sqrt(log_q.size))


def test_mean_log_likelihood_unit_weights_equal_unweighted(rng: np.random.Generator) -> None:
    log_q = rng.normal(size=1000)
    weighted = mean_log_likelihood(log_q, np.ones_like(log_q))
    unweighted = mean_log_likelihood(log_q)
    assert weighted.value == pytest.approx(unweighted.value)
    assert weighted.stderr == pytest.approx(unweighted.stderr)


def test_mean_log_likelihood_negative_weights(rng: np.random.Generator) -> None:
    log_q = rng.normal(size=1000)
    weights = np.where(rng.random(1000) < 0.1, -1.0, 1.0)
    est = mean_log_likelihood(log_q, weights)
    assert est.value == pytest.approx(np.sum(weights * log_q) / np.sum(weights))
    assert np.isfinite(est.stderr)
    assert est.stderr > mean_log_likelihood(log_q).stderr


def test_mean_log_likelihood_non_finite_does_not_crash() -> None:
    est = mean_log_likelihood(np.array([-1.0, -np.inf, -2.0]))
    assert est.value == -np.inf
    assert est.stderr == np.inf


def test_chi2_same_distribution_is_compatible(rng: np.random.Generator) -> None:
    result = histogram_chi2(rng.normal(size=20_000), rng.normal(size=20_000), bins=40)
    assert 0.4 < result.chi2 / result.ndf < 1.8
    assert result.ndf <= 39


def test_chi2_shifted_distribution_is_large(rng: np.random.Generator) -> None:
    result = histogram_chi2(rng.normal(size=20_000), rng.normal(0.2, size=20_000), bins=40)
    assert result.chi2 / result.ndf > 5
    assert result.p_value < 1e-10


def test_chi2_different_sample_sizes_unbiased(rng: np.random.Generator) -> None:
    result = histogram_chi2(rng.normal(size=10_000), rng.normal(size=40_000), bins=40)
    assert result.p_value > 1e-3
    assert result.chi2 / result.ndf < 1.6


def test_chi2_unweighted_is_standard_two_sample_formula(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=3000), rng.normal(0.1, 1.1, size=7000)
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=25)
    n1, n2 = np.histogram(a, edges)[0], np.histogram(b, edges)[0]
    used = (n1 + n2) > 0
    big_n1, big_n2 = n1.sum(), n2.sum()
    num = (np.sqrt(big_n2 / big_n1) * n1 - np.sqrt(big_n1 / big_n2) * n2)[used] ** 2
    expected = np.sum(num / (n1 + n2)[used])
    result = histogram_chi2(a, b, bins=25)
    assert result.chi2 == pytest.approx(expected, rel=1e-12)
    assert result.ndf == used.sum() - 1
    assert result.p_value == pytest.approx(stats.chi2.sf(expected, used.sum() - 1))


def test_chi2_constant_weights_equal_unweighted(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=10_000), rng.normal(size=40_000)
    weighted = histogram_chi2(a, b, bins=30, weights_a=np.full(a.size, 2.5))
    unweighted = histogram_chi2(a, b, bins=30)
    assert weighted.chi2 == pytest.approx(unweighted.chi2, rel=1e-9)
    assert weighted.ndf == unweighted.ndf


def test_chi2_importance_weights_compatible(rng: np.random.Generator) -> None:
    a = rng.normal(0.0, 1.3, size=10_000)
    weights = stats.norm.pdf(a) / stats.norm.pdf(a, 0.0, 1.3)
    result = histogram_chi2(a, rng.normal(size=40_000), bins=40, weights_a=weights)
    assert result.p_value > 1e-3


def test_chi2_weighted_with_negative_weights_detects_shift(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=20_000), rng.normal(0.3, size=20_000)
    weights = np.where(rng.random(a.size) < 0.05, -1.0, 1.0)
    same = histogram_chi2(a, rng.normal(size=20_000), bins=30, weights_a=weights)
    shifted = histogram_chi2(a, b, bins=30, weights_a=weights)
    assert same.p_value > 1e-3
    assert shifted.p_value < 1e-10


def test_chi2_constant_feature_has_zero_ndf() -> None:
    result = histogram_chi2(np.ones(10), np.ones(20))
    assert (result.chi2, result.ndf, result.p_value) == (0.0, 0, 1.0)


def test_ks(rng: np.random.Generator) -> None:
    same = ks_statistic(rng.normal(size=5000), rng.normal(size=3000))
    shifted = ks_statistic(rng.normal(size=5000), rng.normal(0.5, size=3000))
    assert same.p_value > 1e-3
    assert shifted.statistic > 0.1
    assert shifted.p_value < 1e-10


def test_per_feature_comparison(rng: np.random.Generator) -> None:
    gen = rng.normal(size=(5000, 2))
    ref = rng.normal(size=(6000, 2)) + np.array([0.0, 1.0])
    rows = per_feature_comparison(gen, ref, ["pt", "eta"], bins=30)
    assert [r["name"] for r in rows] == ["pt", "eta"]
    assert set(rows[0]) == {"name", "chi2", "ndf", "chi2_ndf", "chi2_p", "ks", "ks_p"}
    assert rows[0]["chi2_ndf"] == pytest.approx(rows[0]["chi2"] / rows[0]["ndf"])
    assert rows[0]["chi2_p"] > 1e-3
    assert rows[1]["chi2_p"] < 1e-10


def test_classifier_auc_same_distribution(rng: np.random.Generator) -> None:
    est = classifier_auc(rng.normal(size=(4000, 3)), rng.normal(size=(5000, 3)), seed=1)
    assert abs(est.value - 0.5) < max(4 * est.stderr, 0.05)
    assert 0 < est.stderr < 0.05


def test_classifier_auc_separated(rng: np.random.Generator) -> None:
    est = classifier_auc(rng.normal(size=(4000, 3)), rng.normal(3.0, size=(4000, 3)), seed=1)
    assert est.value > 0.9


def test_classifier_auc_is_reproducible(rng: np.random.Generator) -> None:
    gen, ref = rng.normal(size=(1000, 2)), rng.normal(0.3, size=(1000, 2))
    assert classifier_auc(gen, ref, seed=7) == classifier_auc(gen, ref, seed=7)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mean_log_likelihood(np.array([])), "log_q: expected at least one"),
        (lambda: mean_log_likelihood(np.ones(3), np.ones(4)), "weights: expected shape"),
        (lambda: mean_log_likelihood(np.ones(3), -np.ones(3)), "positive sum"),
        (lambda: kl_divergence(np.zeros(3), np.zeros(2)), "log_q: expected shape"),
        (lambda: kl_divergence(np.array([0.0, -np.inf]), np.zeros(2)), "finite"),
        (lambda: histogram_chi2(np.array([]), np.ones(3)), "a: expected at least one"),
        (lambda: histogram_chi2(np.ones((3, 2)), np.ones(3)), "1-d array"),
        (lambda: histogram_chi2(np.ones(3), np.ones(3), weights_b=np.ones(2)), "weights_b"),
        (lambda: ks_statistic(np.ones(3), np.array([1.0, np.nan])), "b: expected only finite"),
        (
            lambda: per_feature_comparison(np.ones((5, 2)), np.ones((5, 3)), ["a", "b"]),
            "reference: expected 2 features",
        ),
        (
            lambda: per_feature_comparison(np.ones((5, 2)), np.ones((5, 2)), ["a"]),
            "names: expected 2 names, got 1",
        ),
        (
            lambda: classifier_auc(np.ones((50, 2)), np.ones((50, 3)), seed=0),
            "reference: expected 2 features",
        ),
        (lambda: classifier_auc(np.ones((5, 2)), np.ones((50, 2)), seed=0), "at least 10"),
        (lambda: classifier_auc(np.ones((0, 2)), np.ones((5, 2)), seed=0), "generated"),
    ],
)
def test_bad_input_raises(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
