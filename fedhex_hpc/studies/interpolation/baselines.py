"""What a flow must beat at an unseen label point: the nearest training point's events,
and quantile (moment) morphing between neighbouring training points.

Morphing interpolates each feature's quantile function linearly in the label
(template morphing; Baak et al., arXiv:1410.7388): with weights ``w_i`` summing to
one, ``Q(u) = sum_i w_i Q_i(u)``. A shift-and-scale family is morphed exactly.
Morphed events take the rank structure (copula) of the nearest training point's
events, so correlations between features come from that point.
"""

from __future__ import annotations

import numpy as np

__all__ = ["morph_quantiles", "morphed_events"]


def morph_quantiles(quantiles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Linear interpolation of quantile functions.

    Args:
        quantiles: ``quantiles[i, j]`` is quantile function ``i`` at probability ``u_j``,
            shape ``(k, m)``.
        weights: One weight per function, shape ``(k,)``, summing to one.

    Returns:
        The morphed quantile function at the same probabilities, shape ``(m,)``.

    Raises:
        ValueError: Mismatched shapes or weights not summing to one.
    """
    quantiles = np.asarray(quantiles, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if quantiles.ndim != 2 or weights.shape != (quantiles.shape[0],):
        raise ValueError(
            f"quantiles (k, m) and weights (k,) expected, got {quantiles.shape}, {weights.shape}"
        )
    if not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"weights must sum to 1, got {weights.sum():g}")
    return weights @ quantiles


def morphed_events(
    samples: list[np.ndarray], weights: np.ndarray, template: np.ndarray
) -> np.ndarray:
    """Events at the morphed point: the template's ranks through the morphed quantiles.

    Args:
        samples: Events of each neighbouring training point, each ``(n_i, d)``.
        weights: Morphing weights of the points, summing to one.
        template: Events whose per-feature ranks are kept (the nearest point's), ``(n, d)``.

    Returns:
        As many events as the template, shape ``(n, d)``.
    """
    n, d = template.shape
    out = np.empty((n, d), dtype=np.float64)
    for j in range(d):
        ranks = np.argsort(np.argsort(template[:, j], kind="stable"), kind="stable")
        u = (ranks + 0.5) / n
        quantiles = np.stack([np.quantile(s[:, j], u) for s in samples])
        out[:, j] = morph_quantiles(quantiles, weights)
    return out
