"""The table of random streams: unique ids, reproducible and distinct draws."""

from __future__ import annotations

import numpy as np
import pytest

from fedhex_hpc.seeding import STREAMS, derive_seed, rng


def test_every_stream_has_its_own_id():
    assert len(set(STREAMS.values())) == len(STREAMS)


def test_draws_repeat_for_one_stream_and_differ_between_streams():
    assert derive_seed(7, "kl_samples") == derive_seed(7, "kl_samples")
    seeds = {derive_seed(7, name) for name in STREAMS}
    assert len(seeds) == len(STREAMS)
    assert derive_seed(7, "made_init", 0) != derive_seed(7, "made_init", 1)
    np.testing.assert_array_equal(
        rng(3, "batch_order", 5).random(4), rng(3, "batch_order", 5).random(4)
    )
    assert not np.array_equal(
        rng(3, "batch_order", 5).random(4), rng(3, "batch_order", 6).random(4)
    )


def test_an_unnamed_stream_is_a_programming_error():
    with pytest.raises(KeyError):
        derive_seed(1, "no such stream")
