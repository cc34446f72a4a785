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


@pytest.mark.parametrize("batch_norm", [False, True])
def test_steps_in_row_parts_take_the_steps_of_one_part(batch_norm):
    k, batch = 4, 64
    flows = [make_flow(n_conditions=1, batch_norm=batch_norm) for _ in range(2)]
    (whole_model, x, c), (parts_model, _, _) = flows
    parts_model.shards = 2
    xs, cs = x[: k * batch].reshape(k, batch, -1), c[: k * batch].reshape(k, batch, -1)
    seeds = np.array([[5, i] for i in range(k)], np.int64)
    # plain SGD: Adam would turn float noise in a gradient that is zero (a shift that
    # batch norm removes) into a step of the full learning rate
    losses = []
    for model in (whole_model, parts_model):
        optimizer = tf.keras.optimizers.SGD(1e-2)
        optimizer.build(model.trainable_variables)
        losses.append(build_train_steps(model, optimizer, noise_std=0.1)(xs, cs, None, seeds))
    np.testing.assert_allclose(losses[1].numpy(), losses[0].numpy(), rtol=1e-6)
    for a, b in zip(whole_model.variables, parts_model.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
