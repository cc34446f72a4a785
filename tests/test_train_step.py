"""Compiled training steps: several steps per call take the very steps single calls take."""

from __future__ import annotations

import numpy as np
import pytest

from fedhex_hpc._tf import tf
from fedhex_hpc.train import parts
from fedhex_hpc.train.adam import apply_gradients
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


@pytest.mark.parametrize("transform", ["affine", "spline"])
@pytest.mark.parametrize("weighted", [False, True])
def test_steps_in_parts_one_after_another_take_the_steps_of_one_part(
    monkeypatch, transform, weighted
):
    """Two lanes of three parts each, every part with its own tape (train/parts.py)."""
    k, batch = 3, 64
    flows = [make_flow(n_conditions=1, transform=transform) for _ in range(2)]
    (whole_model, x, c), (parts_model, _, _) = flows
    parts_model.shards = 2
    # 32 rows per lane x 16 hidden units: three parts of 10 or 11 rows
    monkeypatch.setattr(parts, "part_elements", lambda: 32 * 16 // 3)
    assert parts.parts_per_lane(parts_model, batch) == 3
    assert parts.parts_per_lane(whole_model, batch) == 1
    xs, cs = x[: k * batch].reshape(k, batch, -1), c[: k * batch].reshape(k, batch, -1)
    ws = np.random.default_rng(1).uniform(0.5, 1.5, (k, batch)).astype(np.float32)
    seeds = np.array([[5, i] for i in range(k)], np.int64)
    losses = []
    for model in (whole_model, parts_model):
        optimizer = tf.keras.optimizers.SGD(1e-2)
        optimizer.build(model.trainable_variables)
        steps = build_train_steps(model, optimizer, noise_std=0.1, weight_norm=1.3)
        losses.append(steps(xs, cs, ws if weighted else None, seeds))
    np.testing.assert_allclose(losses[1].numpy(), losses[0].numpy(), rtol=1e-6)
    for a, b in zip(whole_model.variables, parts_model.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)


def test_parts_one_after_another_only_where_all_rows_need_not_meet():
    batch_norm_flow, _, _ = make_flow(batch_norm=True)
    flow, _, _ = make_flow()
    for model in (flow, batch_norm_flow):
        model.shards = 2
    rows = 8 * parts.part_elements() // 16
    assert parts.parts_per_lane(flow, rows) == 4
    assert parts.parts_per_lane(batch_norm_flow, rows) == 1  # its statistics join all rows
    assert parts.parts_per_lane(flow, None) == 1  # the batch size is unknown when traced


def test_part_size_follows_the_l2_cache(tmp_path, monkeypatch):
    if parts.CPU_CACHES.is_dir():  # this machine's own description is read
        assert parts.l2_cache_bytes() > 0
    for index, level, size in [(0, 1, "32K"), (1, 1, "32K"), (2, 2, "2048K"), (3, 3, "32M")]:
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "size").write_text(f"{size}\n")
    assert parts.l2_cache_bytes(tmp_path) == 2 * 2**20
    (tmp_path / "index2" / "size").write_text("512K\n")
    assert parts.l2_cache_bytes(tmp_path) == 2**19
    assert parts.l2_cache_bytes(tmp_path / "absent") is None
    for l2, expected in [(2**19, parts.SMALL_L2_PART_ELEMENTS), (2**21, parts.PART_ELEMENTS)]:
        monkeypatch.setattr(parts, "l2_cache_bytes", lambda l2=l2: l2)
        assert parts.part_elements.__wrapped__() == expected
    monkeypatch.setattr(parts, "l2_cache_bytes", lambda: None)
    assert parts.part_elements.__wrapped__() == parts.PART_ELEMENTS


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: tf.keras.optimizers.Adam(1e-2),
        lambda: tf.keras.optimizers.Adam(1e-2, amsgrad=True),
        lambda: tf.keras.optimizers.SGD(1e-2, momentum=0.9),
    ],
    ids=["adam", "amsgrad", "sgd"],
)
def test_fused_adam_update_is_the_keras_update(make_optimizer):
    """Five updates, one of them after a learning-rate change: the fused Adam kernel
    (other optimizers keep Keras's own update) moves the weights and the optimizer's
    moments and step count as ``optimizer.apply_gradients`` does."""
    models, optimizers = [], []
    for _ in range(2):
        model, _, _ = make_flow(n_conditions=1)
        optimizer = make_optimizer()
        optimizer.build(model.trainable_variables)
        models.append(model)
        optimizers.append(optimizer)
    rng = np.random.default_rng(0)
    variables = [m.trainable_variables for m in models]
    fused = tf.function(lambda grads: apply_gradients(optimizers[0], grads, variables[0]))
    for i in range(5):
        if i == 3:
            for optimizer in optimizers:
                optimizer.learning_rate.assign(3e-3)
        grads = [tf.constant(rng.normal(size=v.shape), tf.float32) for v in variables[0]]
        fused(grads)
        optimizers[1].apply_gradients(zip(grads, variables[1], strict=True))
    assert int(optimizers[0].iterations) == int(optimizers[1].iterations) == 5
    for a, b in zip(optimizers[0].variables(), optimizers[1].variables(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
    for a, b in zip(*variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)


def test_xla_compiled_steps_take_the_steps_of_the_graph():
    """``train.jit_compile``: XLA compiles the written-out block gradient and the fused
    Adam update, and the steps are those of the uncompiled graph to rounding (without
    input noise, whose random numbers differ under XLA)."""
    k, batch = 3, 64
    flows = [make_flow(n_conditions=1) for _ in range(2)]
    (graph_model, x, c), (xla_model, _, _) = flows
    xs, cs = x[: k * batch].reshape(k, batch, -1), c[: k * batch].reshape(k, batch, -1)
    seeds = np.array([[5, i] for i in range(k)], np.int64)
    losses = [
        build_train_steps(model, adam(model), jit_compile=jit)(xs, cs, None, seeds)
        for model, jit in ((graph_model, False), (xla_model, True))
    ]
    np.testing.assert_allclose(losses[1].numpy(), losses[0].numpy(), rtol=1e-5)
    for a, b in zip(graph_model.variables, xla_model.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.name)
