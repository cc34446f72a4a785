"""Tests for fedhex_hpc.targets: exact normalised densities, seeded sampling, registry."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.targets import (
    TARGETS,
    GaussExpBackground,
    GaussianAroundCondition,
    GaussianMixture,
    Target,
    UniformBoxMixture,
    get_target,
    list_targets,
    target_params,
)

ALL = list(TARGETS)
N_MOMENTS = 40_000


@functools.cache
def build(name: str) -> Target:
    """One default instance per registry name, shared by the tests."""
    return TARGETS[name]()


def names_where(predicate) -> list[str]:
    return [name for name in ALL if predicate(build(name))]


UNCONDITIONAL = names_where(lambda t: t.cond_dim == 0)
CONDITIONAL = names_where(lambda t: t.cond_dim > 0)
GAUSSIAN_MIXTURES = names_where(lambda t: isinstance(t, GaussianMixture))
LOW_DIM_UNCONDITIONAL = names_where(lambda t: t.cond_dim == 0 and t.dim <= 2)

# Conditions that are not training points (between and outside them).
OFF_GRID = {
    "cond/line": [[0.37, 0.52], [1.3, -0.2]],
    "cond/grid": [[0.05, 0.95], [-0.4, 0.61]],
    "cond/gauss_exp_bkg": [[172.5], [150.0], [190.0], [168.0]],
}


def grid_box(target: Target, cond: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Integration box (lo, hi) holding all but ~1e-15 of the mass, and a cell size."""
    if isinstance(target, GaussianMixture):
        sd = np.sqrt(np.diagonal(target.covariances, axis1=1, axis2=2))
        smallest = np.sqrt(min(np.linalg.eigvalsh(c).min() for c in target.covariances))
        return (target.means - 9 * sd).min(0), (target.means + 9 * sd).max(0), smallest / 3
    if isinstance(target, UniformBoxMixture):  # edges fall on cell boundaries: exact
        return np.floor(target.lows.min(0)) - 1, np.ceil(target.highs.max(0)) + 1, 0.05
    assert isinstance(target, GaussianAroundCondition)
    return cond[0] - 10 * target.sigma, cond[0] + 10 * target.sigma, target.sigma / 3


def grid_integrals(target: Target, cond: np.ndarray | None = None) -> tuple[float, float]:
    """Midpoint-rule integrals of p and p log p over ``grid_box`` (1D or 2D)."""
    lo, hi, h = grid_box(target, cond)
    axes = []
    for a, b in zip(np.atleast_1d(lo), np.atleast_1d(hi), strict=True):
        n = int(np.ceil((b - a) / h))
        axes.append(a + (np.arange(n) + 0.5) * (b - a) / n)
    cell = np.prod([(ax[1] - ax[0]) for ax in axes])
    points = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, target.dim)
    full_cond = None if cond is None else np.repeat(cond, len(points), axis=0)
    logp = target.log_prob(points, full_cond)
    p = np.exp(logp)
    plogp = np.where(p > 0, p * np.where(np.isfinite(logp), logp, 0.0), 0.0)
    return float(p.sum() * cell), float(plogp.sum() * cell)


def assert_mean_matches(samples: np.ndarray, expected: np.ndarray) -> None:
    """Sample mean within 5 standard errors of ``expected`` on every axis."""
    error = samples.std(axis=0) / np.sqrt(len(samples))
    assert np.all(np.abs(samples.mean(axis=0) - expected) <= 5 * error + 1e-12)


# ---------------------------------------------------------------- interface


@pytest.mark.parametrize("name", ALL)
def test_attributes(name: str) -> None:
    target = build(name)
    assert target.name == name
    assert target.description and "\n" not in target.description
    assert len(target.feature_names) == target.dim
    assert len(target.condition_names) == target.cond_dim
    assert name.startswith(f"dim{target.dim}/") or name.startswith("cond/")


@pytest.mark.parametrize("name", ALL)
def test_sample_shape_dtype_and_seeding(name: str) -> None:
    target = build(name)
    x, cond = target.sample(300, seed=7)
    assert x.shape == (300, target.dim) and x.dtype == np.float64
    if target.cond_dim:
        assert cond.shape == (300, target.cond_dim) and cond.dtype == np.float64
    else:
        assert cond is None
    x_again, cond_again = target.sample(300, seed=7)
    np.testing.assert_array_equal(x, x_again)
    np.testing.assert_array_equal(cond, cond_again)
    assert not np.array_equal(x, target.sample(300, seed=8)[0])
    assert target.sample(0, seed=1)[0].shape == (0, target.dim)


@pytest.mark.parametrize("name", ALL)
def test_log_prob_finite_on_own_samples(name: str) -> None:
    target = build(name)
    x, cond = target.sample(2000, seed=3)
    logp = target.log_prob(x, cond)
    assert logp.shape == (2000,) and logp.dtype == np.float64
    assert np.all(np.isfinite(logp))


@pytest.mark.parametrize("name", UNCONDITIONAL)
def test_sample_mean_matches_analytic(name: str) -> None:
    target = build(name)
    x, _ = target.sample(N_MOMENTS, seed=11)
    assert target.mean().shape == (target.dim,)
    assert_mean_matches(x, target.mean())


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_sample_mean_matches_analytic(name: str) -> None:
    target = build(name)
    x, cond = target.sample(N_MOMENTS, seed=11)
    assert {tuple(c) for c in cond} <= {tuple(c) for c in target.train_conditions}
    assert_mean_matches(x, target.mean(cond).mean(axis=0))


@pytest.mark.parametrize("name", CONDITIONAL)
def test_sample_given_off_grid_matches_mean(name: str) -> None:
    target = build(name)
    for row in OFF_GRID[name]:
        cond = np.tile(row, (N_MOMENTS, 1))
        x = target.sample_given(cond, seed=5)
        assert x.shape == (N_MOMENTS, target.dim)
        np.testing.assert_array_equal(x, target.sample_given(cond, seed=5))
        assert np.all(np.isfinite(target.log_prob(x, cond)))
        assert_mean_matches(x, target.mean(cond[:1])[0])


@pytest.mark.parametrize("name", UNCONDITIONAL)
def test_sample_given_rejected_for_unconditional(name: str) -> None:
    with pytest.raises(TypeError, match="unconditional"):
        build(name).sample_given(np.zeros((3, 1)), seed=0)


# ---------------------------------------------------------------- exactness


@pytest.mark.parametrize("name", LOW_DIM_UNCONDITIONAL)
def test_normalised_and_consistent_with_samples(name: str) -> None:
    """Grid quadrature: integral of p is 1, and E_p[log p] agrees with the samples."""
    target = build(name)
    total, neg_entropy = grid_integrals(target)
    assert total == pytest.approx(1.0, abs=1e-3)
    logp = target.log_prob(*target.sample(N_MOMENTS, seed=2))
    error = logp.std() / np.sqrt(len(logp))
    assert abs(logp.mean() - neg_entropy) <= 5 * error + 1e-3


@pytest.mark.parametrize("name", ["dim1/gaussian", "dim1/two_gaussians"])
def test_1d_normalisation_by_quad(name: str) -> None:
    target = build(name)
    means = target.means[:, 0]
    integral, _ = integrate.quad(
        lambda v: np.exp(target.log_prob([[v]]))[0], -15, 15, points=means, limit=200
    )
    assert integral == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("name", GAUSSIAN_MIXTURES)
def test_gaussian_mixture_matches_scipy(name: str) -> None:
    """log_prob agrees with an independent scipy computation; sample covariance matches."""
    target = build(name)
    x, _ = target.sample(N_MOMENTS, seed=4)
    components = [
        stats.multivariate_normal(m, c).logpdf(x[:500]).reshape(-1)
        for m, c in zip(target.means, target.covariances, strict=True)
    ]
    expected = logsumexp(np.stack(components) + np.log(target.weights)[:, None], axis=0)
    np.testing.assert_allclose(target.log_prob(x[:500]), expected, rtol=1e-10)
    centred = target.means - target.mean()
    covariance = np.einsum("k,kij->ij", target.weights, target.covariances)
    covariance += np.einsum("k,ki,kj->ij", target.weights, centred, centred)
    sd = np.sqrt(np.diag(covariance))
    np.testing.assert_allclose(
        np.cov(x.T).reshape(covariance.shape), covariance, atol=0.05 * sd.max() ** 2
    )


def test_10d_importance_sampling_normalisation() -> None:
    """E_q[p/q] = 1 with q an equal-weight mixture of the components widened by 1.5."""
    target = build("dim10/random_gaussians")
    proposal = GaussianMixture(
        name="proposal", description="q", means=target.means, covariances=1.5 * target.covariances
    )
    x, _ = proposal.sample(20_000, seed=9)
    ratio = np.exp(target.log_prob(x) - proposal.log_prob(x))
    assert abs(ratio.mean() - 1.0) <= 5 * ratio.std() / np.sqrt(len(ratio))
    assert abs(ratio.mean() - 1.0) < 0.05


@pytest.mark.parametrize("name", ["cond/line", "cond/grid"])
def test_gaussian_around_condition_normalised_off_grid(name: str) -> None:
    target = build(name)
    for row in OFF_GRID[name]:
        total, _ = grid_integrals(target, np.array([row]))
        assert total == pytest.approx(1.0, abs=1e-6)
        x = target.sample_given(np.tile(row, (5000, 1)), seed=1)
        for axis in range(2):
            z = (x[:, axis] - row[axis]) / target.sigma
            assert stats.kstest(z, "norm").pvalue > 1e-3


def test_gauss_exp_bkg_normalised_and_sampled_correctly() -> None:
    target = build("cond/gauss_exp_bkg")
    for (mass,) in OFF_GRID["cond/gauss_exp_bkg"]:
        density = lambda v, m=mass: np.exp(target.log_prob([[v]], [[m]]))[0]  # noqa: E731
        integral, _ = integrate.quad(density, 160, 185, points=[min(max(mass, 160), 185)])
        assert integral == pytest.approx(1.0, abs=1e-8)
        grid = np.linspace(160, 185, 20_001)
        cdf = integrate.cumulative_trapezoid(
            np.exp(target.log_prob(grid[:, None], np.full((len(grid), 1), mass))), grid, initial=0
        )
        x = target.sample_given(np.full((5000, 1), mass), seed=2)[:, 0]
        assert stats.kstest(x, functools.partial(np.interp, xp=grid, fp=cdf)).pvalue > 1e-3


def test_gauss_exp_bkg_support_and_masses() -> None:
    target = build("cond/gauss_exp_bkg")
    assert isinstance(target, GaussExpBackground)
    expected_train = [166, 167, 169, 170, 172, 173, 175, 176, 178, 179, 180]
    np.testing.assert_array_equal(target.train_masses, expected_train)
    np.testing.assert_array_equal(target.heldout_masses, [168, 171, 174, 177])
    x, cond = target.sample(5000, seed=0)
    assert x.min() >= 160 and x.max() <= 185
    assert set(cond[:, 0]) == set(expected_train)
    logp = target.log_prob([[159.9], [185.1], [160.0], [185.0]], [[170.0]] * 4)
    assert np.all(np.isneginf(logp[:2])) and np.all(np.isfinite(logp[2:]))
    with pytest.raises(ValueError, match="positive"):
        target.log_prob([[170.0]], [[-1.0]])


def test_uniform_exact_values_and_support() -> None:
    target = build("dim2/uniform3")
    logp = target.log_prob([[0.0, 0.0], [-2.5, 2.0], [1.0, 0.0], [0.0, 2.01]])
    np.testing.assert_allclose(logp[:2], np.log(1 / 12))
    assert np.all(np.isneginf(logp[2:]))


def test_dim1_gaussian_exact() -> None:
    x = np.linspace(-6, 3, 7)[:, None]
    expected = stats.norm(-2.5, 0.5).logpdf(x[:, 0])
    np.testing.assert_allclose(build("dim1/gaussian").log_prob(x), expected, rtol=1e-12)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ["dim1/gaussian", "dim2/uniform4", "dim10/random_gaussians"])
def test_bad_shapes_unconditional(name: str) -> None:
    target = build(name)
    expected = rf"shape \(n, {target.dim}\)"
    for bad in (np.zeros(5), np.zeros((5, target.dim + 1)), np.zeros((2, 5, target.dim))):
        with pytest.raises(ValueError, match=expected):
            target.log_prob(bad)
    with pytest.raises(ValueError, match="unconditional"):
        target.log_prob(np.zeros((5, target.dim)), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="non-finite"):
        target.log_prob(np.full((1, target.dim), np.nan))
    with pytest.raises(ValueError, match="non-negative"):
        target.sample(-1, seed=0)


@pytest.mark.parametrize("name", CONDITIONAL)
def test_bad_shapes_conditional(name: str) -> None:
    target = build(name)
    x, cond = target.sample(4, seed=0)
    with pytest.raises(ValueError, match="required"):
        target.log_prob(x)
    with pytest.raises(ValueError, match=rf"shape \(4, {target.cond_dim}\)"):
        target.log_prob(x, cond[:3])
    with pytest.raises(ValueError, match=rf"shape \(4, {target.cond_dim}\)"):
        target.log_prob(x, cond[:, 0])
    with pytest.raises(ValueError, match=rf"shape \(n, {target.cond_dim}\)"):
        target.sample_given(np.zeros((4, target.cond_dim + 1)), seed=0)
    with pytest.raises(ValueError, match="required"):
        target.mean()


# ---------------------------------------------------------------- registry


def test_unknown_name_suggests_nearest() -> None:
    with pytest.raises(
        ConfigError, match=r"'dim2/three_in_a_row' \(did you mean 'dim2/three_in_row'"
    ):
        get_target("dim2/three_in_a_row")
    with pytest.raises(ConfigError, match="unknown target 'zzz'; valid: dim1/gaussian, "):
        get_target("zzz")


def test_params() -> None:
    assert target_params("dim10/random_gaussians") == {
        "radius": 4.0,
        "n_components": 7,
        "seed": 1234,
    }
    assert target_params("dim2/random_gaussians") == {"n_components": 7, "seed": 1234}
    with pytest.raises(ConfigError, match="valid parameters: radius, n_components, seed"):
        get_target("dim10/random_gaussians", radiu=3)
    with pytest.raises(ConfigError, match="valid parameters: none"):
        get_target("dim2/grid3x3", seed=1)
    for bad in ({"radius": -1.0}, {"seed": 1.5}, {"n_components": 0}, {"seed": True}):
        with pytest.raises(ConfigError):
            get_target("dim10/random_gaussians", **bad)


def test_params_change_the_target() -> None:
    default = build("dim10/random_gaussians")
    wide = get_target("dim10/random_gaussians", radius=15)
    assert np.abs(wide.means).max() > 4 >= np.abs(default.means).max()
    np.testing.assert_allclose(wide.means, default.means * 15 / 4)
    other = get_target("dim2/random_gaussians", n_components=3, seed=1)
    assert other.means.shape == (3, 2)
    assert not np.allclose(other.means, build("dim2/random_gaussians").means[:3])
    np.testing.assert_array_equal(
        get_target("dim2/random_gaussians").means, build("dim2/random_gaussians").means
    )


def test_list_targets() -> None:
    listed = list_targets()
    assert [name for name, _ in listed] == ALL
    assert all(isinstance(description, str) and description for _, description in listed)


def test_import_does_not_load_tensorflow() -> None:
    code = "import sys, fedhex_hpc.targets; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_gauss_exp_bkg_signal_fraction_splits_peak_and_background() -> None:
    peak = get_target("cond/gauss_exp_bkg", signal_fraction=1.0)
    background = get_target("cond/gauss_exp_bkg", signal_fraction=0.0)
    mixed = get_target("cond/gauss_exp_bkg")
    x, cond = np.linspace(160, 185, 101)[:, None], np.full((101, 1), 172.0)
    np.testing.assert_allclose(
        np.exp(mixed.log_prob(x, cond)),
        0.3 * np.exp(peak.log_prob(x, cond)) + 0.7 * np.exp(background.log_prob(x, cond)),
        rtol=1e-12,
    )
    for target in (peak, background):
        integral, _ = integrate.quad(
            lambda v, t=target: np.exp(t.log_prob([[v]], [[172.0]]))[0], 160, 185, points=[172]
        )
        assert integral == pytest.approx(1.0, abs=1e-8)
    drawn = peak.sample_given(np.full((2000, 1), 172.0), seed=1)
    assert abs(drawn.mean() - 172.0) < 0.2 and drawn.std() == pytest.approx(1.72, rel=0.1)
    with pytest.raises(ConfigError, match="signal_fraction must be in"):
        get_target("cond/gauss_exp_bkg", signal_fraction=1.5)
