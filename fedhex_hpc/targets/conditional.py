"""Conditional targets ``p(x | cond)`` from the FEDHEX and INNFER studies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import truncexpon, truncnorm

from fedhex_hpc.targets.base import ConditionalTarget

__all__ = ["GaussExpBackground", "GaussianAroundCondition"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class GaussianAroundCondition(ConditionalTarget):
    """Isotropic Gaussian centred on the condition: ``x | c ~ N(c, sigma^2 I)``.

    ``cond`` has the same width as ``x``; the density is defined for every ``c``, and
    ``sample`` draws ``c`` uniformly from the training centres.

    Attributes:
        sigma: Per-axis standard deviation.
    """

    def __init__(
        self,
        *,
        name: str,
        description: str,
        centres: object,
        sigma: float,
        feature_names: Sequence[str] | None = None,
        condition_names: Sequence[str] | None = None,
    ) -> None:
        """Build the target.

        Args:
            name: Registry name.
            description: One-line description.
            centres: Array-like ``(m, dim)`` of training centres.
            sigma: Positive per-axis standard deviation.
            feature_names: Column names of ``x``.
            condition_names: Column names of ``cond``.

        Raises:
            ValueError: If ``sigma`` is not positive.
        """
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)
        centres_array = np.asarray(centres, dtype=np.float64)
        super().__init__(
            name=name,
            dim=centres_array.shape[-1],
            description=description,
            train_conditions=centres_array,
            feature_names=feature_names,
            condition_names=condition_names,
        )

    def _log_prob(self, x: np.ndarray, cond: np.ndarray | None) -> np.ndarray:
        squared = np.sum((x - cond) ** 2, axis=1) / self.sigma**2
        return -0.5 * squared - self.dim * (np.log(self.sigma) + 0.5 * _LOG_2PI)

    def _sample_given(self, cond: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return cond + self.sigma * rng.standard_normal(cond.shape)

    def _mean(self, cond: np.ndarray | None) -> np.ndarray:
        return np.array(cond)


class GaussExpBackground(ConditionalTarget):
    """Signal peak on a falling background, both truncated to ``[low, high]``.

    For true mass ``m`` (the single condition)::

        p(x | m) = f * TruncNormal(x; m, (resolution * m)^2; [low, high])
                 + (1 - f) * TruncExponential(x; slope; [low, high])

    where the exponential density is proportional to ``exp(-slope * (x - low))``. Both
    pieces are normalised on the interval, so ``p`` is exact for every ``m > 0``.

    Attributes:
        low: Lower edge of the support.
        high: Upper edge of the support.
        signal_fraction: Weight ``f`` of the signal peak (0: the background alone, 1: the
            peak alone).
        resolution: Relative width ``sigma / m`` of the peak.
        slope: Rate of the exponential background (per unit of ``x``).
        train_masses: Read-only array of masses used by ``sample``.
        heldout_masses: Read-only array of masses withheld from training.
    """

    def __init__(
        self,
        *,
        name: str,
        description: str,
        low: float,
        high: float,
        signal_fraction: float,
        resolution: float,
        slope: float,
        train_masses: Sequence[float],
        heldout_masses: Sequence[float],
    ) -> None:
        """Build the target.

        Args:
            name: Registry name.
            description: One-line description.
            low: Lower edge of the support.
            high: Upper edge of the support (above ``low``).
            signal_fraction: Signal weight in [0, 1].
            resolution: Positive relative peak width.
            slope: Positive background rate.
            train_masses: Masses drawn uniformly by ``sample``.
            heldout_masses: Masses withheld from training (for evaluation).

        Raises:
            ValueError: If a parameter is out of range.
        """
        if not (high > low and 0.0 <= signal_fraction <= 1.0 and resolution > 0 and slope > 0):
            raise ValueError("need high > low, 0 <= signal_fraction <= 1, resolution, slope > 0")
        self.low, self.high = float(low), float(high)
        self.signal_fraction = float(signal_fraction)
        self.resolution, self.slope = float(resolution), float(slope)
        self.train_masses = np.array(train_masses, dtype=np.float64)
        self.heldout_masses = np.array(heldout_masses, dtype=np.float64)
        self.train_masses.setflags(write=False)
        self.heldout_masses.setflags(write=False)
        super().__init__(
            name=name,
            dim=1,
            description=description,
            train_conditions=self.train_masses[:, None],
            feature_names=["mass_reco"],
            condition_names=["mass_true"],
        )

    def _signal(self, cond: np.ndarray) -> dict[str, np.ndarray]:
        """Keyword arguments of ``scipy.stats.truncnorm`` for the peak at each mass."""
        mass = cond[:, 0]
        if np.any(mass <= 0):
            raise ValueError("the mass condition must be positive")
        scale = self.resolution * mass
        return {
            "a": (self.low - mass) / scale,
            "b": (self.high - mass) / scale,
            "loc": mass,
            "scale": scale,
        }

    def _background(self) -> dict[str, float]:
        """Keyword arguments of ``scipy.stats.truncexpon`` for the background."""
        return {"b": (self.high - self.low) * self.slope, "loc": self.low, "scale": 1 / self.slope}

    def _log_prob(self, x: np.ndarray, cond: np.ndarray | None) -> np.ndarray:
        values = x[:, 0]
        with np.errstate(divide="ignore"):  # log 0 = -inf for a pure peak or background
            log_f, log_1mf = np.log(self.signal_fraction), np.log1p(-self.signal_fraction)
        return np.logaddexp(
            log_f + truncnorm.logpdf(values, **self._signal(cond)),
            log_1mf + truncexpon.logpdf(values, **self._background()),
        )

    def _sample_given(self, cond: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = cond.shape[0]
        is_signal = rng.random(n) < self.signal_fraction
        signal = truncnorm.rvs(size=n, random_state=rng, **self._signal(cond))
        background = truncexpon.rvs(size=n, random_state=rng, **self._background())
        return np.where(is_signal, signal, background)[:, None]

    def _mean(self, cond: np.ndarray | None) -> np.ndarray:
        # scipy's truncnorm.mean costs ~0.1 ms per row, so evaluate each distinct mass once.
        masses, rows = np.unique(cond, return_inverse=True)
        signal = truncnorm.mean(**self._signal(masses[:, None]))
        background = truncexpon.mean(**self._background())
        f = self.signal_fraction
        return (f * signal + (1 - f) * background)[rows.reshape(-1), None]
