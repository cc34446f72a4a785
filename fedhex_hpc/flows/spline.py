"""Rational-quadratic spline blocks: the expressive alternative to the affine MAF block.

A spline block maps each feature through a monotone rational-quadratic spline of
``bins`` bins on ``[-bound, bound]`` (identity with slope 1 outside), whose bin
widths, heights and interior knot slopes come from a :class:`~fedhex_hpc.flows.made.MADE`
of the features before it and the conditions, as in a MAF. With one feature the
parameters depend on the conditions alone, so p(x | c) can take any smooth shape
(an affine block can only shift and scale it).

References:
    Durkan et al., "Neural Spline Flows", arXiv:1906.04032.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhex_hpc._tf import tf, tfb
from fedhex_hpc.flows.made import MADE

__all__ = ["TRANSFORMS", "SplineTransform"]

#: The block kinds of a flow (``flow.transform``).
TRANSFORMS = ("affine", "spline")
#: Smallest bin width and height, as a fraction of the mean, and smallest knot slope.
_MIN_BIN = 1e-3
_MIN_SLOPE = 1e-3
#: Raw slope offset: a zero network output gives slope 1 (with equal bins, the identity).
_SLOPE_OFFSET = float(np.log(np.expm1(1.0 - _MIN_SLOPE)))


@dataclass(frozen=True)
class SplineTransform:
    """The spline of every block of a flow: ``bins`` bins on ``[-bound, bound]``."""

    bins: int
    bound: float

    @property
    def n_params(self) -> int:
        """Raw network outputs per feature: widths, heights and interior slopes."""
        return 3 * self.bins - 1

    def bijector(self, raw: tf.Tensor) -> tfb.RationalQuadraticSpline:
        """The elementwise spline of raw parameters ``raw`` (n, n_params * d) of a
        :meth:`MADE.network <fedhex_hpc.flows.made.MADE.network>`, acting on (n, d)."""
        k = self.bins
        n_features = tf.shape(raw)[-1] // self.n_params
        params = tf.reshape(raw, tf.concat([tf.shape(raw)[:-1], [self.n_params, n_features]], 0))
        params = tf.linalg.matrix_transpose(params)  # (n, d, n_params)
        width = 2.0 * self.bound
        min_bin = _MIN_BIN * width / k

        def bins(logits: tf.Tensor) -> tf.Tensor:
            return min_bin + (width - k * min_bin) * tf.math.softmax(logits, axis=-1)

        slopes = _MIN_SLOPE + tf.math.softplus(params[..., 2 * k :] + _SLOPE_OFFSET)
        return tfb.RationalQuadraticSpline(
            bin_widths=bins(params[..., :k]),
            bin_heights=bins(params[..., k : 2 * k]),
            knot_slopes=slopes,
            range_min=-self.bound,
        )

    def inverse(
        self, made: MADE, y: tf.Tensor, cond: tf.Tensor | None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """One block in the data-to-latent direction with one network evaluation.

        Args:
            made: The block's network (``n_params`` outputs per feature).
            y: The block's data-side input (n, d).
            cond: Normalised conditions (n, c), or ``None``.

        Returns:
            The latent-side output (n, d) and the block's log|det| per event (n,).
        """
        spline = self.bijector(made.network(y, cond))
        log_det = tf.reduce_sum(spline.inverse_log_det_jacobian(y, event_ndims=0), axis=-1)
        return spline.inverse(y), log_det

    def maf(self, made: MADE, name: str) -> tfb.MaskedAutoregressiveFlow:
        """The block as TFP's MaskedAutoregressiveFlow (the reference; it also samples)."""

        def bijector_fn(y: tf.Tensor, conditional_input: tf.Tensor | None = None) -> tfb.Bijector:
            return self.bijector(made.network(y, conditional_input))

        return tfb.MaskedAutoregressiveFlow(bijector_fn=bijector_fn, name=name)
