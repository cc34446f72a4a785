"""Preprocessing bijectors whose constants are fitted once and saved with the model.

Statistics come from the whole training split, never from a batch, so likelihoods
are comparable across batches, runs and files.

Warning:
    The logit transform maps (low, high) onto the real line; ``low``/``high`` are
    the training minimum/maximum widened by ``alpha`` times the range. Events
    outside that interval are outside the flow's domain (:meth:`Preprocessing.in_domain`):
    their model density is zero (log-likelihood -inf).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fedhex_hpc._tf import tf, tfb

__all__ = ["PREPROCESSING_KINDS", "Preprocessing", "Standardization", "fit_preprocessing"]

PREPROCESSING_KINDS = ("standardize", "logit", "none")


@dataclass(frozen=True)
class Standardization:
    """Per-column mean and standard deviation."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardization:
        """Fit to the columns of ``x``; constant columns get std 1."""
        x = np.asarray(x, dtype=np.float64)
        std = x.std(axis=0)
        return cls(mean=x.mean(axis=0).tolist(), std=np.where(std > 0, std, 1.0).tolist())

    @classmethod
    def identity(cls, n: int) -> Standardization:
        """The transform that leaves ``n`` columns unchanged."""
        return cls(mean=[0.0] * n, std=[1.0] * n)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Standardise ``x`` (numpy)."""
        return (x - np.asarray(self.mean)) / np.asarray(self.std)


@dataclass(frozen=True)
class Preprocessing:
    """Map from data space to the flow's working space, stored as plain numbers.

    ``kind`` is ``standardize`` (affine), ``logit`` (interval -> logit -> standardise)
    or ``none``. ``low``/``high`` are only used by ``logit``; ``scaling`` is the
    standardisation applied last (in logit space for ``logit``).
    """

    kind: str
    scaling: Standardization
    low: list[float] | None = None
    high: list[float] | None = None

    def bijectors(self) -> list:
        """TFP bijectors mapping working space to data space, outermost first."""
        scaling = [
            tfb.Shift(np.float32(self.scaling.mean)),
            tfb.Scale(np.float32(self.scaling.std)),
        ]
        if self.kind == "logit":
            return [tfb.Sigmoid(low=np.float32(self.low), high=np.float32(self.high)), *scaling]
        return scaling

    def _below_above(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor] | None:
        """Per value (n, d): at or below ``low``, at or above ``high``; None without bounds."""
        if self.kind != "logit":
            return None
        x = tf.cast(x, tf.float32)
        return x <= np.float32(self.low), x >= np.float32(self.high)

    def in_domain(self, x: tf.Tensor | np.ndarray) -> tf.Tensor:
        """Which events the flow has a density for.

        ``logit`` needs every feature strictly inside ``(low, high)`` (in float32, as the
        bijector computes); the other kinds cover every event. NaN counts as inside, so it
        still propagates into the log-density.

        Args:
            x: Data-space events, shape (n, d).

        Returns:
            A bool tensor of shape (n,).
        """
        bounds = self._below_above(x)
        if bounds is None:
            return tf.ones(tf.shape(x)[:-1], tf.bool)
        below, above = bounds
        return tf.logical_not(tf.reduce_any(tf.logical_or(below, above), axis=-1))

    def domain_centre(self) -> np.ndarray:
        """A data-space point inside the domain (stands in for events outside it)."""
        if self.kind == "logit":
            return (np.asarray(self.low) + np.asarray(self.high)) / 2.0
        return np.zeros(len(self.scaling.mean))

    def outside_counts(self, x: np.ndarray) -> np.ndarray:
        """Events below and above the domain in each feature, shape (d, 2), int64."""
        bounds = self._below_above(x)
        if bounds is None:
            return np.zeros((np.shape(x)[-1], 2), np.int64)
        return np.stack([b.numpy().sum(axis=0) for b in bounds], axis=1).astype(np.int64)

    def describe_outside(self, counts: np.ndarray, names: list[str]) -> str:
        """One phrase per feature with events outside the domain, from :meth:`outside_counts`.

        For example ``tau21_j1 outside [0.0512, 0.9871]: 3 below, 9 above``; empty when
        ``counts`` is all zero.
        """
        parts = []
        for i, (below, above) in enumerate(np.asarray(counts, np.int64)):
            if below or above:
                name = names[i] if i < len(names) else f"feature {i}"
                parts.append(
                    f"{name} outside [{self.low[i]:.6g}, {self.high[i]:.6g}]: "
                    f"{below} below, {above} above"
                )
        return "; ".join(parts)

    def feature_scale(self) -> np.ndarray:
        """Typical scale of each data feature, used to size training noise."""
        if self.kind == "logit":
            return (np.asarray(self.high) - np.asarray(self.low)) / 4.0
        return np.asarray(self.scaling.std)

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=d["kind"],
            scaling=Standardization(**d["scaling"]),
            low=d.get("low"),
            high=d.get("high"),
        )


def fit_preprocessing(x: np.ndarray, kind: str, logit_alpha: float = 0.05) -> Preprocessing:
    """Fit preprocessing constants on the training features ``x`` (n, d).

    Args:
        x: Training features.
        kind: One of ``PREPROCESSING_KINDS``.
        logit_alpha: Fraction of each feature's range added on both sides before
            the logit, so the extreme training events stay inside the interval.

    Returns:
        The fitted :class:`Preprocessing`.
    """
    x = np.asarray(x, dtype=np.float64)
    n_features = x.shape[1]
    if kind == "none":
        return Preprocessing(kind, Standardization.identity(n_features))
    if kind == "standardize":
        return Preprocessing(kind, Standardization.fit(x))
    if kind != "logit":
        raise ValueError(f"preprocessing must be one of {PREPROCESSING_KINDS}, got {kind!r}")
    lo, hi = x.min(axis=0), x.max(axis=0)
    width = np.where(hi > lo, hi - lo, 1.0)
    low, high = lo - logit_alpha * width, hi + logit_alpha * width
    u = (x - low) / (high - low)
    logits = np.log(u) - np.log1p(-u)
    return Preprocessing(kind, Standardization.fit(logits), low.tolist(), high.tolist())
