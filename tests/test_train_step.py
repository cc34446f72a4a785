"""Compiled training steps: several steps per call take the very steps single calls take."""

from __future__ import annotations

import numpy as np
import pytest

from fedhex_hpc._tf import tf
from fedhex_hpc.train.step import STEP_EVENTS, build_train_step, build_train_steps, steps_per_call

from .flow_factory import make_flow


def adam(model):
    optimizer = tf.keras.optimizers.Adam(1e-2)
    optimizer.build(model.trainable_variables)
    return optimizer


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_stacked_steps_equal_single_steps(conditional, batch_norm):
    k, batch = 4, 64
    flows = [make_flow(n_conditions=int(conditional), batch_norm=batch_norm) for _ in range(2)]
    (single_model, x, c), (stacked_model, _, _) = flows
    rng = np.random.default_rng(0)
    xs = x[: k * batch].reshape(k, batch, -1)
    cs = None if c is None else c[: k * batch].reshape(k, batch, -1)
    ws = rng.uniform(0.5, 1.5, (k, batch)).astype(np.float32)
    seeds = np.array([[5, i] for i in range(k)], np.int64)

    single = build_train_step(single_model, adam(single_model), noise_std=0.1)
    single_losses = [
        single(xs[i], None if cs is None else cs[i], ws[i], seeds[i]).numpy() for i in range(k)
    ]
    stacked = build_train_steps(stacked_model, adam(stacked_model), noise_std=0.1)
    stacked_losses = stacked(xs, cs, ws, seeds).numpy()

    np.testing.assert_allclose(stacked_losses, single_losses, rtol=1e-6)
    for a, b in zip(single_model.variables, stacked_model.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_steps_per_call_fills_the_call_at_small_batches_only():
    assert steps_per_call(256) == STEP_EVENTS // 256 > 1
    assert steps_per_call(STEP_EVENTS) == steps_per_call(4 * STEP_EVENTS) == 1
