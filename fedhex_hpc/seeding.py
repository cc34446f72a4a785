"""Derived seeds: every random stream of a run comes from ``run.seed`` and a stream id."""

from __future__ import annotations

import numpy as np

__all__ = ["derive_seed"]


def derive_seed(seed: int, *stream: int) -> int:
    """A 63-bit seed for the stream ``stream`` of a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, *stream]).generate_state(2, np.uint64)[0] >> 1)
