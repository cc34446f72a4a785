"""Geometry of the label space: nearest points, the convex hull, and morphing weights.

Labels are standardised (each column by its spread over all points) and reduced to
their affine span, so points on a line in a 2-d label plane (``cond/line``) are
treated as 1-d, and labels in GeV and TeV weigh alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

__all__ = ["LabelSpace"]

_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LabelSpace:
    """Training points in reduced coordinates, with queries for any label point.

    Args:
        training: Training label points, shape ``(m, k)``.
        scale_points: Points fixing the standardisation and the affine span
            (all label points of the study).
    """

    training: np.ndarray
    scale_points: np.ndarray

    def _reduce(self, points: np.ndarray) -> np.ndarray:
        ref = np.asarray(self.scale_points, dtype=np.float64)
        centre = ref.mean(axis=0)
        spread = ref.std(axis=0)
        spread[spread == 0] = 1.0
        scaled = (ref - centre) / spread
        _, sing, vt = np.linalg.svd(scaled, full_matrices=False)
        basis = vt[sing > 1e-8 * max(sing.max(), 1.0)]
        return ((np.atleast_2d(points) - centre) / spread) @ basis.T

    @property
    def dim(self) -> int:
        """Dimension of the affine span of the label points."""
        return self._reduce(self.training).shape[1]

    def nearest(self, point: np.ndarray) -> int:
        """Index of the training point nearest to ``point`` (in standardised labels)."""
        distance = np.sum((self._reduce(self.training) - self._reduce(point)) ** 2, axis=1)
        return int(np.argmin(distance))

    def outside_hull(self, point: np.ndarray) -> bool:
        """Whether ``point`` lies outside the convex hull of the training points."""
        train, query = self._reduce(self.training), self._reduce(point)
        if train.shape[1] == 1:
            value = query[0, 0]
            return bool(value < train.min() - _TOLERANCE or value > train.max() + _TOLERANCE)
        return bool(Delaunay(train).find_simplex(query, tol=_TOLERANCE)[0] < 0)

    def morph_weights(self, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training points and linear weights (summing to 1) that interpolate to ``point``.

        1-d labels: the two bracketing points (at an end, the two nearest, extrapolating
        linearly). More dimensions: the vertices of the Delaunay simplex holding the
        point with its barycentric coordinates; outside the hull, the simplex whose
        smallest coordinate is largest (linear extrapolation, some weights negative).
        """
        train, query = self._reduce(self.training), self._reduce(point)
        if train.shape[1] == 1:
            x, value = train[:, 0], query[0, 0]
            order = np.argsort(x)
            right = int(np.clip(np.searchsorted(x[order], value), 1, len(x) - 1))
            a, b = order[right - 1], order[right]
            t = (value - x[a]) / (x[b] - x[a])
            return np.array([a, b]), np.array([1.0 - t, t])
        tri = Delaunay(train)
        dim = train.shape[1]
        transforms = tri.transform
        offsets = query[0] - transforms[:, dim]
        partial = np.einsum("sij,sj->si", transforms[:, :dim], offsets)
        bary = np.hstack([partial, 1.0 - partial.sum(axis=1, keepdims=True)])
        best = int(np.argmax(bary.min(axis=1)))
        return tri.simplices[best].copy(), bary[best]
