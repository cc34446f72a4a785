"""The classifiers' inputs: a named feature set of event columns plus noise columns.

``baseline`` is CATHODE's four features; ``extended`` adds tau32 = tau3/tau2 of
each jet. ``n_noise`` standard-normal columns may be appended to test how well a
classifier ignores inputs that carry no information.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fedhex_hpc.data.sources.lhco import BASELINE_FEATURES, EXTENDED_FEATURES
from fedhex_hpc.errors import ConfigError, DataError, suggest
from fedhex_hpc.seeding import rng

__all__ = ["FEATURE_SETS", "classifier_inputs", "feature_names"]

_COLUMNS: dict[str, tuple[str, ...]] = {
    "baseline": tuple(BASELINE_FEATURES),
    "extended": tuple(EXTENDED_FEATURES),
}
FEATURE_SETS: tuple[str, ...] = tuple(_COLUMNS)


def feature_names(feature_set: str) -> tuple[str, ...]:
    """The columns of ``feature_set`` (one of :data:`FEATURE_SETS`), in input order.

    Raises:
        ConfigError: An unknown feature set; the message lists them.
    """
    if feature_set not in _COLUMNS:
        raise ConfigError(
            f"unknown feature set {feature_set!r}{suggest(str(feature_set), FEATURE_SETS)}; "
            f"feature sets: {', '.join(FEATURE_SETS)}"
        )
    return _COLUMNS[feature_set]


def classifier_inputs(
    columns: Mapping[str, np.ndarray],
    feature_set: str,
    n_noise: int,
    seed: int,
    part: int = 0,
) -> np.ndarray:
    """The ``(n, d + n_noise)`` input matrix of a feature set for ``n`` events.

    Args:
        columns: Event columns by name (at least those of ``feature_set``), each ``(n,)``.
        feature_set: One of :data:`FEATURE_SETS`.
        n_noise: Standard-normal columns appended after the features.
        seed: Seed of the noise (stream ``classifier_noise``).
        part: Told apart the noise of different event sets of one seed (e.g. 0 for
            training, 1 for validation, 2 for test events).

    Returns:
        float64 inputs, features in :func:`feature_names` order, then the noise.

    Raises:
        ConfigError: An unknown feature set or a negative ``n_noise``.
        DataError: A feature column is missing, not 1-d or of another length.
    """
    names = feature_names(feature_set)
    if isinstance(n_noise, bool) or not isinstance(n_noise, int) or n_noise < 0:
        raise ConfigError(f"n_noise must be a non-negative integer, got {n_noise!r}")
    missing = [name for name in names if name not in columns]
    if missing:
        raise DataError(
            f"feature set {feature_set!r} needs column(s) {', '.join(missing)}; "
            f"got {', '.join(columns) or 'none'}"
        )
    arrays = [np.asarray(columns[name], dtype=np.float64) for name in names]
    n = len(arrays[0])
    for name, array in zip(names, arrays, strict=True):
        if array.shape != (n,):
            raise DataError(f"column {name}: expected shape ({n},), got {array.shape}")
    noise = rng(seed, "classifier_noise", part).standard_normal((n, n_noise))
    return np.column_stack([*arrays, noise]) if n_noise else np.column_stack(arrays)
