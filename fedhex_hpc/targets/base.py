"""Abstract interface shared by every known target distribution.

A target has an exact, normalised log density and seeded sampling. Subclasses implement
the private hooks (``_log_prob``, ``_sample``, ``_mean`` and, for conditional targets,
``_sample_given``); the public methods defined here validate inputs once, so every target
reports a mistake in the same way.
"""

from __future__ import annotations

import abc
import operator
from collections.abc import Sequence

import numpy as np

__all__ = ["ConditionalTarget", "Target"]


def _default_names(names: Sequence[str] | None, width: int, prefix: str) -> tuple[str, ...]:
    """Return ``names`` as a tuple (checking its length) or ``prefix0 .. prefix{width-1}``."""
    if names is None:
        return tuple(f"{prefix}{i}" for i in range(width))
    if len(names) != width:
        raise ValueError(f"expected {width} names, got {len(names)}: {list(names)}")
    return tuple(names)


def _as_rows(values: object, width: int, label: str, n_rows: int | None = None) -> np.ndarray:
    """Convert ``values`` to a finite float64 array of shape ``(n, width)``.

    Args:
        values: Array-like input.
        width: Required number of columns.
        label: Name used in error messages (``"x"`` or ``"cond"``).
        n_rows: Required number of rows, or ``None`` for any.

    Returns:
        The validated float64 array.

    Raises:
        ValueError: If the shape is wrong or an entry is not finite.
    """
    array = np.asarray(values, dtype=np.float64)
    expected = f"({'n' if n_rows is None else n_rows}, {width})"
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{label} must have shape {expected}, got {array.shape}")
    if n_rows is not None and array.shape[0] != n_rows:
        raise ValueError(f"{label} must have shape {expected} to match x, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{label} contains non-finite values")
    return array


class Target(abc.ABC):
    """A known probability distribution over ``dim`` real features.

    Attributes:
        name: Registry name, e.g. ``"dim2/three_in_row"``.
        dim: Number of features.
        cond_dim: Number of conditioning labels (0 for unconditional targets).
        description: One-line human-readable description.
    """

    def __init__(
        self,
        *,
        name: str,
        dim: int,
        description: str,
        cond_dim: int = 0,
        feature_names: Sequence[str] | None = None,
        condition_names: Sequence[str] | None = None,
    ) -> None:
        """Set the descriptive attributes.

        Args:
            name: Registry name.
            dim: Number of features.
            description: One-line description.
            cond_dim: Number of conditioning labels.
            feature_names: Column names of ``x`` (default ``x0, x1, ...``).
            condition_names: Column names of ``cond`` (default ``c0, c1, ...``).
        """
        self.name = name
        self.dim = dim
        self.cond_dim = cond_dim
        self.description = description
        self._feature_names = _default_names(feature_names, dim, "x")
        self._condition_names = _default_names(condition_names, cond_dim, "c")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} dim={self.dim} cond_dim={self.cond_dim}>"

    @property
    def feature_names(self) -> list[str]:
        """Names of the ``dim`` feature columns."""
        return list(self._feature_names)

    @property
    def condition_names(self) -> list[str]:
        """Names of the ``cond_dim`` condition columns (empty if unconditional)."""
        return list(self._condition_names)

    def log_prob(self, x: np.ndarray, cond: np.ndarray | None = None) -> np.ndarray:
        """Exact normalised log density.

        Args:
            x: Points of shape ``(n, dim)``; must be finite.
            cond: Conditions of shape ``(n, cond_dim)`` for conditional targets, else ``None``.

        Returns:
            Float64 array of shape ``(n,)``; ``-inf`` outside the support.

        Raises:
            ValueError: If a shape is wrong, an entry is not finite, or ``cond`` is given to
                an unconditional target (or missing for a conditional one).
        """
        points = _as_rows(x, self.dim, "x")
        return self._log_prob(points, self._check_cond(cond, points.shape[0]))

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw ``n`` independent samples, deterministically for a given seed.

        Args:
            n: Number of samples (non-negative).
            seed: Seed for ``np.random.default_rng``.

        Returns:
            ``(x, cond)`` with ``x`` of shape ``(n, dim)``; ``cond`` has shape
            ``(n, cond_dim)`` for conditional targets and is ``None`` otherwise.

        Raises:
            ValueError: If ``n`` is negative.
        """
        count = operator.index(n)
        if count < 0:
            raise ValueError(f"n must be non-negative, got {count}")
        return self._sample(count, np.random.default_rng(seed))

    def sample_given(self, cond: np.ndarray, seed: int) -> np.ndarray:
        """Draw one ``x`` per row of ``cond`` (conditional targets only).

        Raises:
            TypeError: Always, for unconditional targets.
        """
        raise TypeError(f"target {self.name!r} is unconditional; use sample(n, seed)")

    def mean(self, cond: np.ndarray | None = None) -> np.ndarray:
        """Analytic mean of ``x``.

        Args:
            cond: ``None`` for unconditional targets; conditions of shape ``(n, cond_dim)``
                for conditional targets.

        Returns:
            Shape ``(dim,)`` for unconditional targets, ``(n, dim)`` (the mean given each
            condition row) for conditional targets.
        """
        return self._mean(self._check_cond(cond, None))

    def _check_cond(self, cond: np.ndarray | None, n_rows: int | None) -> np.ndarray | None:
        """Validate ``cond`` against ``cond_dim`` (and ``n_rows`` if given)."""
        if self.cond_dim == 0:
            if cond is not None:
                raise ValueError(f"target {self.name!r} is unconditional; cond must be None")
            return None
        if cond is None:
            raise ValueError(
                f"target {self.name!r} is conditional; cond of shape (n, {self.cond_dim}) "
                "is required"
            )
        return _as_rows(cond, self.cond_dim, "cond", n_rows)

    @abc.abstractmethod
    def _log_prob(self, x: np.ndarray, cond: np.ndarray | None) -> np.ndarray:
        """Log density of validated ``x`` (and ``cond``); shape ``(n,)``."""

    @abc.abstractmethod
    def _sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw ``n`` samples (and conditions) from ``rng``."""

    @abc.abstractmethod
    def _mean(self, cond: np.ndarray | None) -> np.ndarray:
        """Analytic mean, unconditionally or given validated ``cond``."""


class ConditionalTarget(Target):
    """A target ``p(x | cond)`` with a finite set of training conditions.

    ``sample`` draws conditions uniformly from ``train_conditions`` and then one ``x`` per
    condition; ``sample_given`` and ``log_prob`` accept any condition value, including
    values between the training points.

    Attributes:
        train_conditions: Read-only array ``(m, cond_dim)`` of training condition values.
    """

    def __init__(
        self,
        *,
        name: str,
        dim: int,
        description: str,
        train_conditions: np.ndarray,
        feature_names: Sequence[str] | None = None,
        condition_names: Sequence[str] | None = None,
    ) -> None:
        """Store the training conditions; see ``Target.__init__`` for other arguments."""
        conditions = np.array(train_conditions, dtype=np.float64)
        if conditions.ndim != 2 or conditions.shape[0] == 0:
            raise ValueError(
                f"train_conditions must have shape (m, cond_dim), m >= 1, got {conditions.shape}"
            )
        conditions.setflags(write=False)
        self.train_conditions = conditions
        super().__init__(
            name=name,
            dim=dim,
            description=description,
            cond_dim=conditions.shape[1],
            feature_names=feature_names,
            condition_names=condition_names,
        )

    def sample_given(self, cond: np.ndarray, seed: int) -> np.ndarray:
        """Draw one ``x`` per row of ``cond``, deterministically for a given seed.

        Args:
            cond: Conditions of shape ``(n, cond_dim)``; any finite values.
            seed: Seed for ``np.random.default_rng``.

        Returns:
            Float64 array of shape ``(n, dim)``.

        Raises:
            ValueError: If ``cond`` has the wrong shape or non-finite entries.
        """
        conditions = self._check_cond(cond, None)
        return self._sample_given(conditions, np.random.default_rng(seed))

    def _sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        conditions = self.train_conditions[rng.integers(len(self.train_conditions), size=n)]
        return self._sample_given(conditions, rng), conditions

    @abc.abstractmethod
    def _sample_given(self, cond: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one ``x`` per row of validated ``cond`` from ``rng``."""
