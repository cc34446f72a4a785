"""The classifiers' inputs: named event columns plus noise columns.

``n_noise`` standard-normal columns may be appended to test how well a classifier
ignores inputs that carry no information.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedhex_hpc.errors import ConfigError, DataError
from fedhex_hpc.seeding import rng

__all__ = ["classifier_inputs"]


def classifier_inputs(
    columns: Mapping[str, np.ndarray],
    names: Sequence[str],
    n_noise: int,
    seed: int,
    part: int = 0,
) -> np.ndarray:
    """The ``(n, len(names) + n_noise)`` input matrix of ``n`` events.

    Args:
        columns: Event columns by name (at least ``names``), each ``(n,)``.
        names: The input columns, in order (e.g. a feature set of
            :data:`fedhex_hpc.data.sources.lhco.FEATURE_SETS`).
        n_noise: Standard-normal columns appended after the features.
        seed: Seed of the noise (stream ``classifier_noise``).
        part: Told apart the noise of different event sets of one seed (e.g. 0 for
            training, 1 for validation, 2 for test events).

    Returns:
        float64 inputs, ``names`` in order, then the noise.

    Raises:
        ConfigError: A negative ``n_noise``.
        DataError: A feature column is missing, not 1-d or of another length.
    """
    if isinstance(n_noise, bool) or not isinstance(n_noise, int) or n_noise < 0:
        raise ConfigError(f"n_noise must be a non-negative integer, got {n_noise!r}")
    missing = [name for name in names if name not in columns]
    if missing:
        raise DataError(
            f"the inputs need column(s) {', '.join(missing)}; got {', '.join(columns) or 'none'}"
        )
    arrays = [np.asarray(columns[name], dtype=np.float64) for name in names]
    n = len(arrays[0])
    for name, array in zip(names, arrays, strict=True):
        if array.shape != (n,):
            raise DataError(f"column {name}: expected shape ({n},), got {array.shape}")
    noise = rng(seed, "classifier_noise", part).standard_normal((n, n_noise))
    return np.column_stack([*arrays, noise]) if n_noise else np.column_stack(arrays)
