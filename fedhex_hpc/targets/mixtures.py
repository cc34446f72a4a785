"""Finite mixtures of multivariate Gaussians with exact log densities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

from fedhex_hpc.targets.base import Target
from fedhex_hpc.targets.mixing import normalise_weights, sample_mixture

__all__ = ["GaussianMixture", "random_gaussian_mixture"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class GaussianMixture(Target):
    """Mixture ``sum_k w_k N(mu_k, Sigma_k)`` with full covariances.

    Attributes:
        means: Read-only array ``(k, dim)`` of component means.
        covariances: Read-only array ``(k, dim, dim)`` of component covariances.
        weights: Read-only array ``(k,)`` of normalised component weights.
    """

    def __init__(
        self,
        *,
        name: str,
        description: str,
        means: object,
        covariances: object,
        weights: object = None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        """Build the mixture and factorise the covariances.

        Args:
            name: Registry name.
            description: One-line description.
            means: Array-like ``(k, dim)``.
            covariances: Array-like ``(k, dim, dim)`` of symmetric positive definite matrices.
            weights: Array-like ``(k,)`` of non-negative weights (normalised here), or
                ``None`` for equal weights.
            feature_names: Column names of ``x``.

        Raises:
            ValueError: If shapes disagree or a covariance is not positive definite.
        """
        mu = np.array(means, dtype=np.float64)
        cov = np.array(covariances, dtype=np.float64)
        if mu.ndim != 2 or mu.shape[0] == 0:
            raise ValueError(f"means must have shape (k, dim), k >= 1, got {mu.shape}")
        k, dim = mu.shape
        if cov.shape != (k, dim, dim):
            raise ValueError(f"covariances must have shape ({k}, {dim}, {dim}), got {cov.shape}")
        if not np.allclose(cov, np.swapaxes(cov, 1, 2)):
            raise ValueError("covariances must be symmetric")
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError as exc:
            raise ValueError("covariances must be positive definite") from exc
        w = normalise_weights(weights, k)
        for array in (mu, cov, w, chol):
            array.setflags(write=False)
        self.means, self.covariances, self.weights = mu, cov, w
        self._chol = chol
        half_log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        self._log_norm = np.log(w) - half_log_det - 0.5 * dim * _LOG_2PI
        super().__init__(name=name, dim=dim, description=description, feature_names=feature_names)

    @classmethod
    def with_diagonal_covariances(
        cls,
        *,
        name: str,
        description: str,
        means: object,
        variances: object,
        weights: object = None,
        feature_names: Sequence[str] | None = None,
    ) -> GaussianMixture:
        """Build a mixture whose components have covariance ``diag(variances_k)``.

        Args:
            name: Registry name.
            description: One-line description.
            means: Array-like ``(k, dim)``.
            variances: Positive per-axis variances broadcastable to ``(k, dim)`` (a scalar
                gives every component covariance ``v * I``).
            weights: Component weights or ``None`` for equal weights.
            feature_names: Column names of ``x``.

        Returns:
            The mixture.
        """
        mu = np.asarray(means, dtype=np.float64)
        var = np.broadcast_to(np.asarray(variances, dtype=np.float64), mu.shape)
        covariances = var[:, :, None] * np.eye(mu.shape[1])
        return cls(
            name=name,
            description=description,
            means=mu,
            covariances=covariances,
            weights=weights,
            feature_names=feature_names,
        )

    def _log_prob(self, x: np.ndarray, cond: np.ndarray | None) -> np.ndarray:
        component_log_probs = np.empty((len(self.weights), x.shape[0]))
        for k, (mu, chol) in enumerate(zip(self.means, self._chol, strict=True)):
            whitened = solve_triangular(chol, (x - mu).T, lower=True, check_finite=False)
            component_log_probs[k] = self._log_norm[k] - 0.5 * np.sum(whitened**2, axis=0)
        return logsumexp(component_log_probs, axis=0)

    def _sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, None]:
        def draw(k: int, count: int, gen: np.random.Generator) -> np.ndarray:
            return self.means[k] + gen.standard_normal((count, self.dim)) @ self._chol[k].T

        return sample_mixture(self.weights, n, rng, draw), None

    def _mean(self, cond: np.ndarray | None) -> np.ndarray:
        return self.weights @ self.means


def random_gaussian_mixture(
    *, name: str, dim: int, n_components: int, radius: float, seed: int
) -> GaussianMixture:
    """Build a reproducible random mixture of full-covariance Gaussians.

    With ``rng = np.random.default_rng(seed)`` the draws are, in this order:

    * locations ``mu_k ~ U(-radius, radius)^dim``;
    * raw weights ``w_k ~ U(3, 4)``, normalised to sum to one;
    * matrices ``A_k`` with i.i.d. ``N(0, 2^2)`` entries, giving covariances
      ``Sigma_k = A_k A_k^T / dim + 0.05 I`` (positive definite by construction; the
      ``1/dim`` keeps the per-axis variance near 4 whatever the dimension).

    Args:
        name: Registry name.
        dim: Number of features.
        n_components: Number of components.
        radius: Half-width of the cube holding the locations.
        seed: Seed of the construction (not of sampling).

    Returns:
        The mixture.
    """
    rng = np.random.default_rng(seed)
    means = rng.uniform(-radius, radius, size=(n_components, dim))
    weights = rng.uniform(3.0, 4.0, size=n_components)
    factors = rng.normal(0.0, 2.0, size=(n_components, dim, dim))
    covariances = factors @ np.swapaxes(factors, 1, 2) / dim + 0.05 * np.eye(dim)
    description = (
        f"{n_components} random full-covariance Gaussians in {dim}D, "
        f"locations U(-{radius:g}, {radius:g}), seed {seed}"
    )
    return GaussianMixture(
        name=name,
        description=description,
        means=means,
        covariances=covariances,
        weights=weights,
    )
