"""Helpers shared by finite mixtures: weight normalisation and component-wise sampling."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["normalise_weights", "sample_mixture"]


def normalise_weights(weights: object, n_components: int) -> np.ndarray:
    """Return mixture weights scaled to sum to one.

    Args:
        weights: Non-negative array-like of length ``n_components`` with a positive sum, or
            ``None`` for equal weights.
        n_components: Number of mixture components.

    Returns:
        Float64 array of shape ``(n_components,)`` summing to one.

    Raises:
        ValueError: If the weights have the wrong length, are negative or non-finite, or
            sum to zero.
    """
    if weights is None:
        return np.full(n_components, 1.0 / n_components)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_components,):
        raise ValueError(f"weights must have shape ({n_components},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero, got {w}")
    return w / w.sum()


def sample_mixture(
    weights: np.ndarray,
    n: int,
    rng: np.random.Generator,
    draw_component: Callable[[int, int, np.random.Generator], np.ndarray],
) -> np.ndarray:
    """Draw ``n`` samples from a mixture, vectorised per component.

    Component counts come from ``rng.multinomial``; the rows are shuffled afterwards so any
    prefix of the result is itself an i.i.d. sample.

    Args:
        weights: Normalised component weights, shape ``(k,)``.
        n: Number of samples.
        rng: Random generator.
        draw_component: ``draw_component(k, count, rng)`` returns ``count`` samples of
            component ``k`` as an array of shape ``(count, dim)``.

    Returns:
        Float64 array of shape ``(n, dim)``.
    """
    counts = rng.multinomial(n, weights)
    parts = [draw_component(k, int(count), rng) for k, count in enumerate(counts)]
    return np.concatenate(parts, axis=0)[rng.permutation(n)]
