"""Mixtures of uniform distributions on axis-aligned boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedhex_hpc.targets.base import Target
from fedhex_hpc.targets.mixing import normalise_weights, sample_mixture

__all__ = ["UniformBoxMixture"]


class UniformBoxMixture(Target):
    """Mixture ``sum_k w_k U(box_k)`` of uniform densities on closed axis-aligned boxes.

    The density is ``sum_k w_k 1[x in box_k] / volume_k`` (boxes may overlap); its log is
    ``-inf`` outside every box.

    Attributes:
        lows: Read-only array ``(k, dim)`` of lower box corners.
        highs: Read-only array ``(k, dim)`` of upper box corners.
        weights: Read-only array ``(k,)`` of normalised component weights.
    """

    def __init__(
        self,
        *,
        name: str,
        description: str,
        lows: object,
        highs: object,
        weights: object = None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        """Build the mixture.

        Args:
            name: Registry name.
            description: One-line description.
            lows: Array-like ``(k, dim)`` of lower corners.
            highs: Array-like ``(k, dim)`` of upper corners, strictly above ``lows``.
            weights: Component weights or ``None`` for equal weights.
            feature_names: Column names of ``x``.

        Raises:
            ValueError: If shapes disagree or a box has zero or negative width.
        """
        lo = np.array(lows, dtype=np.float64)
        hi = np.array(highs, dtype=np.float64)
        if lo.ndim != 2 or lo.shape[0] == 0 or hi.shape != lo.shape:
            raise ValueError(
                f"lows and highs must share a shape (k, dim), k >= 1; got {lo.shape}, {hi.shape}"
            )
        if not np.all(hi > lo):
            raise ValueError("every box needs highs > lows on every axis")
        w = normalise_weights(weights, lo.shape[0])
        for array in (lo, hi, w):
            array.setflags(write=False)
        self.lows, self.highs, self.weights = lo, hi, w
        self._densities = w / np.prod(hi - lo, axis=1)
        super().__init__(
            name=name, dim=lo.shape[1], description=description, feature_names=feature_names
        )

    def _log_prob(self, x: np.ndarray, cond: np.ndarray | None) -> np.ndarray:
        inside = np.all(
            (x[None, :, :] >= self.lows[:, None, :]) & (x[None, :, :] <= self.highs[:, None, :]),
            axis=2,
        )
        density = self._densities @ inside
        log_density = np.full(x.shape[0], -np.inf)
        np.log(density, out=log_density, where=density > 0)
        return log_density

    def _sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, None]:
        def draw(k: int, count: int, gen: np.random.Generator) -> np.ndarray:
            return gen.uniform(self.lows[k], self.highs[k], size=(count, self.dim))

        return sample_mixture(self.weights, n, rng, draw), None

    def _mean(self, cond: np.ndarray | None) -> np.ndarray:
        return self.weights @ (0.5 * (self.lows + self.highs))
