"""Input checks and binning shared by the evaluation metrics and plots."""

from __future__ import annotations

import numpy as np

__all__ = ["as_1d", "as_2d", "check_names", "check_same_features", "common_edges"]


def _as_array(x: object, name: str, ndim: int, finite: bool) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one entry, got an empty array")
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: expected only finite values, got {bad} non-finite")
    return arr


def as_1d(x: object, name: str, finite: bool = True) -> np.ndarray:
    """Return ``x`` as a non-empty 1-d float64 array or raise ValueError."""
    return _as_array(x, name, 1, finite)


def as_2d(x: object, name: str, finite: bool = True) -> np.ndarray:
    """Return ``x`` as a non-empty 2-d float64 array ``(n, d)`` or raise ValueError."""
    arr = _as_array(x, name, 2, finite)
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one feature, got shape {arr.shape}")
    return arr


def check_same_features(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ValueError unless two ``(n, d)`` arrays have the same number of features."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_b}: expected {a.shape[1]} features (as in {name_a}), got {b.shape[1]}"
        )


def check_names(names: list[str], n_features: int) -> list[str]:
    """Return ``names`` as a list, raising ValueError unless it has one name per feature."""
    names = list(names)
    if len(names) != n_features:
        raise ValueError(f"names: expected {n_features} names, got {len(names)}")
    return names


def common_edges(
    a: np.ndarray,
    b: np.ndarray,
    bins: int | np.ndarray,
    range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Bin edges shared by two 1-d samples, spanning their union when ``range`` is None."""
    return np.histogram_bin_edges(np.concatenate([a, b]), bins=bins, range=range)
