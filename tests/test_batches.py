"""Stacks of consecutive batches: boundaries at multiples of the stack size."""

from __future__ import annotations

import numpy as np

from fedhex_hpc.data import Arrays
from fedhex_hpc.data.batches import InMemoryBatches, stack_batches


def data(n):
    x = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    return Arrays(x, x[:, :1] + 0.5, x[:, 0] * 2)


def test_stacks_end_at_multiples_of_their_size_and_before_a_smaller_batch():
    batches = InMemoryBatches(data(10 * 8 + 3), batch_size=8, seed=1)  # 10 full, 1 partial
    stacks = list(stack_batches(batches.epoch(0), 4))
    assert [s.x.shape for s in stacks] == [(4, 8, 2), (4, 8, 2), (2, 8, 2), (1, 3, 2)]
    assert [s.cond.shape[1:] for s in stacks] == [(8, 1)] * 3 + [(3, 1)]
    assert stacks[0].weight.shape == (4, 8)
    flat = np.concatenate([s.x.reshape(-1, 2) for s in stacks])
    np.testing.assert_array_equal(flat, np.concatenate([b.x for b in batches.epoch(0)]))


def test_a_resumed_epoch_stacks_its_steps_like_an_uninterrupted_one():
    batches = InMemoryBatches(data(12 * 8), batch_size=8, seed=1)
    whole = list(stack_batches(batches.epoch(0), 4))
    resumed = list(stack_batches(batches.epoch(0, 5), 4, first_step=5))
    assert [len(s) for s in resumed] == [3, 4]  # steps 5-7 end the second stack
    np.testing.assert_array_equal(resumed[0].x, whole[1].x[1:])
    np.testing.assert_array_equal(resumed[1].x, whole[2].x)
