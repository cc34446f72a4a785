"""The contract every flow variant keeps: finite densities, gradients for every weight,
fresh results after a weight changes, invertibility, exact log-det and save/load."""

from __future__ import annotations

import numpy as np
import pytest

from fedhex_hpc._tf import tf
from fedhex_hpc.flows import FlowModel, load_flow, save_flow

from .flow_factory import VARIANTS, make_flow, randomise, variant_id

N = 32


@pytest.fixture(params=VARIANTS, ids=variant_id)
def flow(request) -> tuple[FlowModel, tf.Tensor, tf.Tensor | None]:
    """A randomised small flow of one variant, with N events (and conditions)."""
    n_conditions, batch_norm, preprocessing, permutation, transform = request.param
    model, x, c = make_flow(
        preprocessing,
        n_conditions,
        batch_norm,
        permutation=permutation,
        n_blocks=2,
        transform=transform,
    )
    randomise(model)
    return model, tf.constant(x[:N]), None if c is None else tf.constant(c[:N])


def test_log_prob_is_finite(flow):
    model, x, cond = flow
    for training in (False, True):
        assert np.isfinite(model.log_prob(x, cond, training=training).numpy()).all()


def test_every_variable_gets_a_gradient_even_after_a_call_outside_the_tape(flow):
    model, x, cond = flow
    model.log_prob(x, cond, training=True)  # the same tensors, first seen outside a tape
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(model.log_prob(x, cond, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    for var, grad in zip(model.trainable_variables, grads, strict=True):
        assert grad is not None, var.name
        assert np.isfinite(grad.numpy()).all(), var.name
        assert np.any(grad.numpy() != 0), var.name
    made = model.mades[0]
    made.network(x, cond)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(made.network(x, cond))
    assert all(g is not None for g in tape.gradient(total, made.trainable_variables))


def test_log_prob_changes_after_a_weight_changes(flow):
    model, x, cond = flow
    made = model.mades[0]
    params_before = made.network(x, cond)
    made.out_kernel.assign_add(tf.fill(made.out_kernel.shape, 0.5))
    params_after = made.network(x, cond)
    assert not np.allclose(params_before.numpy(), params_after.numpy())
    before = model.log_prob(x, cond).numpy()
    made.kernels[-1].assign_add(tf.fill(made.kernels[-1].shape, 0.5))
    after = model.log_prob(x, cond).numpy()
    assert not np.allclose(before, after)


def test_forward_and_latent_map_invert_each_other(flow):
    model, x, cond = flow
    bijector = model.distribution().bijector
    kwargs = model._bijector_kwargs(cond)
    z, _ = model.to_latent(x, cond)
    np.testing.assert_allclose(bijector.forward(z, **kwargs).numpy(), x.numpy(), atol=2e-4)
    # sampling: latent draws pushed forward come back under the latent map
    z_draws = tf.random.stateless_normal(x.shape, seed=[4, 5])
    samples = bijector.forward(z_draws, **kwargs)
    z_back, _ = model.to_latent(samples, cond)
    np.testing.assert_allclose(z_back.numpy(), z_draws.numpy(), atol=2e-4)


def test_log_det_equals_the_autodiff_jacobian(flow):
    model, x, cond = flow
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z, log_det = model.to_latent(x, cond)
        rows = tf.unstack(z, axis=-1)
    # events are independent, so d(sum_n z[n, j])/dx[n] is row j of event n's Jacobian
    jacobian = np.stack([tape.gradient(row, x).numpy() for row in rows], axis=1)
    sign, logabsdet = np.linalg.slogdet(jacobian.astype(np.float64))
    assert np.all(sign != 0)
    np.testing.assert_allclose(log_det.numpy(), logabsdet, rtol=1e-4, atol=1e-4)


def test_save_load_gives_the_same_log_prob(flow, tmp_path):
    model, x, cond = flow
    save_flow(model, tmp_path / "model")
    again = load_flow(tmp_path / "model")
    assert again.spec == model.spec
    np.testing.assert_array_equal(model.log_prob(x, cond).numpy(), again.log_prob(x, cond).numpy())
