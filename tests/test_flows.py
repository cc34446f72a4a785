"""Flow contract: autoregressive masks, invertibility, log-det, identity start, save/load."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from scipy import stats

import fedhex_hpc
from fedhex_hpc._tf import tf
from fedhex_hpc.errors import DataError, RunDirError
from fedhex_hpc.flows import (
    FlowModel,
    FlowSpec,
    fit_preprocessing,
    load_flow,
    made_masks,
    save_flow,
)
from fedhex_hpc.flows.io import FORMAT_VERSION
from fedhex_hpc.flows.made import ACTIVATIONS

from .flow_factory import PART_CASES, make_flow, randomise


def test_masks_are_autoregressive():
    model, x, _ = make_flow()
    randomise(model)
    made = model.mades[0]
    xt = tf.constant(x[:4])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        shift, log_scale = made(xt)
    for out in (shift, log_scale):
        jac = tape.batch_jacobian(out, xt).numpy()  # (batch, out, in)
        # output i may depend only on inputs 0..i-1: upper triangle incl. diagonal is zero
        assert np.all(np.abs(np.triu(jac, 0)) < 1e-7)
        assert np.any(np.abs(np.tril(jac[0], -1)) > 1e-6)


def test_masks_single_feature_sees_only_conditions():
    masks = made_masks(1, [4])
    assert masks[0].sum() == 0  # input -> hidden cut
    assert masks[-1].sum() == 4  # hidden (degree 0) -> output allowed


@pytest.mark.parametrize("preprocessing", ["standardize", "logit", "none"])
def test_inverse_and_log_det_against_finite_differences(preprocessing):
    model, _x, _ = make_flow(preprocessing)
    randomise(model)
    bijector = model.distribution().bijector
    z = tf.constant(np.random.default_rng(1).normal(size=(5, 3)) * 0.5, tf.float32)
    y = bijector.forward(z)
    np.testing.assert_allclose(bijector.inverse(y).numpy(), z.numpy(), atol=2e-4)
    fldj = bijector.forward_log_det_jacobian(z, event_ndims=1).numpy()
    eps = 1e-2
    z64 = z.numpy().astype(np.float64)
    for k in range(len(z64)):
        jac = np.zeros((3, 3))
        for j in range(3):
            dz = np.zeros((2, 3), np.float32)
            dz[0, j], dz[1, j] = eps, -eps
            pts = bijector.forward(tf.constant(z64[k] + dz, tf.float32)).numpy().astype(np.float64)
            jac[:, j] = (pts[0] - pts[1]) / (2 * eps)
        assert np.linalg.slogdet(jac)[1] == pytest.approx(fldj[k], abs=5e-2)


def test_untrained_flow_is_the_fitted_gaussian():
    model, x, _ = make_flow("standardize", identity_init=True)
    pre = model.spec.preprocessing.scaling
    exact = stats.multivariate_normal(mean=pre.mean, cov=np.diag(np.square(pre.std))).logpdf(x)
    np.testing.assert_allclose(model.log_prob(x).numpy(), exact, rtol=1e-5, atol=1e-5)


def test_random_permutations_differ_per_block():
    model, _, _ = make_flow(n_features=3)
    spec = model.spec
    assert spec.permutation == "random"
    wider = FlowModel(
        FlowSpec(
            **{
                **spec.__dict__,
                "n_features": 8,
                "n_blocks": 6,
                "preprocessing": fit_preprocessing(
                    np.random.default_rng(0).normal(size=(10, 8)), "standardize"
                ),
            }
        )
    )
    perms = {tuple(p) for p in wider.permutations}
    assert len(perms) > 1
    assert all(p != tuple(range(8)) for p in perms)


def test_conditional_flow_uses_its_conditions_and_samples_per_row():
    model, x, c = make_flow(n_conditions=1)
    randomise(model)
    for made in model.mades:
        made.cond_kernel.assign(made.cond_kernel * 5.0)
        made.out_kernel.assign(made.out_kernel * 3.0)
    lp_a = model.log_prob(x[:10], c[:10]).numpy()
    lp_b = model.log_prob(x[:10], c[:10] + 0.5).numpy()
    assert not np.allclose(lp_a, lp_b)
    samples = model.sample(10, c[:10], seed=tf.constant([1, 2])).numpy()
    assert samples.shape == (10, 3)
    with pytest.raises(ValueError, match="conditional on 1 labels"):
        model.log_prob(x[:10])


def test_batch_norm_flow_trains_and_evaluates():
    model, x, _ = make_flow(batch_norm=True)
    assert np.isfinite(model.log_prob(x, training=True).numpy()).all()
    assert np.isfinite(model.log_prob(x, training=False).numpy()).all()


def test_save_load_round_trip(tmp_path):
    model, x, c = make_flow(n_conditions=1, preprocessing="logit")
    randomise(model)
    save_flow(model, tmp_path / "model")
    again = load_flow(tmp_path / "model")
    np.testing.assert_array_equal(model.log_prob(x, c).numpy(), again.log_prob(x, c).numpy())
    assert again.spec == model.spec
    assert not list(tmp_path.glob(".*"))  # no temporary folders left behind


def beyond_the_logit_range(model: FlowModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events inside, inside the margin only, beyond it, on its edge; and which are inside."""
    pre = model.spec.preprocessing
    low, high = np.asarray(pre.low, np.float32), np.asarray(pre.high, np.float32)
    rows = [x[0], x[1]]
    margin = x[2].copy()
    margin[0] = x[:, 0].max() + 0.5 * (high[0] - x[:, 0].max())  # beyond the data, in the margin
    above = x[3].copy()
    above[1] = high[1] + 0.1 * (high[1] - low[1])
    below = x[4].copy()
    below[2] = low[2] - 1.0
    edge = x[5].copy()
    edge[0] = low[0]  # the logit of the edge itself is infinite
    both = x[6].copy()
    both[0], both[2] = high[0] + 1.0, low[2] - 1.0
    events = np.stack([*rows, margin, above, below, edge, both]).astype(np.float32)
    return events, np.array([True, True, True, False, False, False, False])


def test_log_prob_outside_the_logit_domain_is_minus_inf_not_nan():
    model, x, c = make_flow("logit", n_conditions=1)
    randomise(model)
    events, inside = beyond_the_logit_range(model, x)
    cond = c[: len(events)]
    np.testing.assert_array_equal(model.in_domain(events).numpy(), inside)
    log_q = model.log_prob(events, cond).numpy()
    assert np.all(np.isfinite(log_q[inside]))
    assert np.all(log_q[~inside] == -np.inf)
    # the events inside score as they do on their own
    np.testing.assert_allclose(
        log_q[inside], model.log_prob(events[inside], cond[inside]), rtol=1e-5
    )
    counts = model.spec.preprocessing.outside_counts(events)
    np.testing.assert_array_equal(counts, [[1, 1], [0, 1], [2, 0]])
    text = model.spec.preprocessing.describe_outside(counts, ["a", "b", "c"])
    low, high = model.spec.preprocessing.low, model.spec.preprocessing.high
    assert text.startswith(f"a outside [{low[0]:.6g}, {high[0]:.6g}]: 1 below, 1 above; b outside")
    assert text.endswith(f"c outside [{low[2]:.6g}, {high[2]:.6g}]: 2 below, 0 above")


def test_gradients_stay_finite_with_events_outside_the_domain_in_the_batch():
    model, x, c = make_flow("logit", n_conditions=1)
    randomise(model)
    events, inside = beyond_the_logit_range(model, x)
    cond = tf.constant(c[: len(events)])
    events = tf.constant(events)
    with tf.GradientTape(persistent=True) as tape:
        log_q = model.log_prob(events, cond, training=True)
        kept = -tf.reduce_mean(tf.boolean_mask(log_q, model.in_domain(events)))
        everything = -tf.reduce_mean(log_q)
    assert np.isfinite(kept.numpy())
    assert everything.numpy() == np.inf
    for loss in (kept, everything):
        grads = tape.gradient(loss, model.trainable_variables)
        assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    # the events inside alone give the same gradient as the batch with the mask
    with tf.GradientTape() as alone:
        loss = -tf.reduce_mean(model.log_prob(tf.boolean_mask(events, inside), cond[inside]))
    for a, b in zip(
        alone.gradient(loss, model.trainable_variables),
        tape.gradient(kept, model.trainable_variables),
        strict=True,
    ):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("preprocessing", ["standardize", "none"])
def test_unbounded_preprocessing_has_every_event_in_its_domain(preprocessing):
    model, x, _ = make_flow(preprocessing)
    far = np.vstack([x[:3], x[:3] * 1e3]).astype(np.float32)
    assert model.in_domain(far).numpy().all()
    assert not model.spec.preprocessing.outside_counts(far).any()
    np.testing.assert_allclose(
        model.log_prob(far).numpy(), model.distribution().log_prob(far).numpy(), rtol=1e-6
    )


def tfp_log_prob(model: FlowModel, x: tf.Tensor, cond, training: bool) -> tf.Tensor:
    """The model's density through TFP's TransformedDistribution and its bijector chain.

    In training mode TransformedDistribution.log_prob takes the batch-norm log-det
    from the forward direction, i.e. from the moving variance, while it normalises
    with the batch variance; the reference there is TFP's inverse plus
    inverse_log_det_jacobian of the same chain, which uses the batch variance for both.
    """
    dist = model.distribution(training)
    kwargs = model._bijector_kwargs(cond)
    if not training:
        return dist.log_prob(x, bijector_kwargs=kwargs)
    z = dist.bijector.inverse(x, **kwargs)
    ildj = dist.bijector.inverse_log_det_jacobian(x, event_ndims=1, **kwargs)
    return dist.distribution.log_prob(z) + ildj


@pytest.mark.parametrize(("variant", "shards"), PART_CASES)
def test_fast_log_prob_and_gradients_equal_tfp(variant, shards):
    n_conditions, batch_norm, preprocessing, permutation, transform = variant
    model, x, c = make_flow(
        preprocessing, n_conditions, batch_norm, permutation=permutation, transform=transform
    )
    randomise(model)
    model.shards = shards  # 64 events: parts of 21, 21 and 22; batch norm joins them
    x = tf.constant(x[:64])
    cond = None if c is None else tf.constant(c[:64])
    variables = model.trainable_variables
    for training in (False, True) if batch_norm else (False,):
        with tf.GradientTape(persistent=True) as tape:
            fast = model.log_prob(x, cond, training=training)
            ref = tfp_log_prob(model, x, cond, training)
            fast_loss, ref_loss = tf.reduce_mean(fast), tf.reduce_mean(ref)
        np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
        fast_grads = tape.gradient(fast_loss, variables)
        ref_grads = tape.gradient(ref_loss, variables)
        for var, g_fast, g_ref in zip(variables, fast_grads, ref_grads, strict=True):
            assert g_fast is not None, var.name
            np.testing.assert_allclose(
                g_fast.numpy(), g_ref.numpy(), rtol=1e-5, atol=1e-5, err_msg=var.name
            )


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize(
    ("n_features", "hidden_units"), [(3, (16, 16)), (1, (8,)), (2, (16, 12, 16))]
)
def test_written_out_gradient_equals_tfp_for_every_activation_and_depth(
    activation, n_features, hidden_units
):
    """The affine block's hand-written backward pass, also towards the conditions
    (the gradient a likelihood fit takes), for every activation and layer count."""
    model, x, c = make_flow(
        n_conditions=2, n_features=n_features, activation=activation, hidden_units=hidden_units
    )
    randomise(model)
    model.shards = 2
    x, cond = tf.constant(x[:64]), tf.constant(c[:64])
    sources = [cond, *model.trainable_variables]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(cond)
        fast = tf.reduce_sum(model.log_prob(x, cond) * tf.range(64, dtype=tf.float32) / 64)
        ref = tf.reduce_sum(tfp_log_prob(model, x, cond, False) * tf.range(64.0) / 64)
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=1e-5)
    names = ["cond", *(v.name for v in model.trainable_variables)]
    for name, g_fast, g_ref in zip(
        names, tape.gradient(fast, sources), tape.gradient(ref, sources), strict=True
    ):
        np.testing.assert_allclose(
            g_fast.numpy(), g_ref.numpy(), rtol=1e-5, atol=1e-5, err_msg=name
        )


@pytest.mark.parametrize(("variant", "shards"), PART_CASES)
def test_sampling_equals_tfp(variant, shards):
    n_conditions, batch_norm, preprocessing, permutation, transform = variant
    model, _, c = make_flow(
        preprocessing, n_conditions, batch_norm, permutation=permutation, transform=transform
    )
    randomise(model)
    model.shards = shards
    cond = None if c is None else tf.constant(c[:64])
    seed = tf.constant([3, 4], tf.int32)
    fast = model.sample(64, cond, seed=seed)
    ref = model.distribution().sample(64, seed=seed, bijector_kwargs=model._bijector_kwargs(cond))
    # a spline's forward is a quadratic root in float32: TFP's differs by a few 1e-5
    tol = 1e-4 if transform == "spline" else 1e-5
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=tol, atol=tol)
    z, _ = model.to_latent(fast, cond)
    np.testing.assert_allclose(model.from_latent(z, cond).numpy(), fast.numpy(), atol=1e-4)
    compiled = model.compiled_sample(64, *([] if cond is None else [cond]), seed)
    np.testing.assert_allclose(compiled.numpy(), ref.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("n_conditions", [0, 1])
def test_batched_log_prob_and_sampling_compile_once_for_every_batch_size(n_conditions, tmp_path):
    model, x, c = make_flow(n_conditions=n_conditions, batch_norm=True)
    randomise(model)
    exact = model.log_prob(x, c).numpy()
    for batch_size in (500, 64, 7):
        got = model.log_prob_batched(x, c, batch_size=batch_size)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)
    assert model.log_prob_batched(x[:0], None if c is None else c[:0]).shape == (0,)
    assert model.compiled_log_prob.experimental_get_tracing_count() == 1
    draws = [
        model.sample_batched(100, None if c is None else c[:100], seed=9, batch_size=b)
        for b in (100, 30, 30)
    ]
    assert draws[0].shape == (100, 3) and draws[0].dtype == np.float32
    np.testing.assert_array_equal(draws[1], draws[2])
    assert not np.allclose(draws[0], draws[1])  # batch i draws with seed [seed, i]
    assert model.compiled_sample.experimental_get_tracing_count() == 1
    save_flow(model, tmp_path / "model")  # compiled functions are not part of the checkpoint
    np.testing.assert_array_equal(
        load_flow(tmp_path / "model").log_prob_batched(x, c), model.log_prob_batched(x, c)
    )


def test_batched_calls_reject_wrong_inputs_in_one_line():
    plain, x, _ = make_flow()
    conditional, _, c = make_flow(n_conditions=1)
    with pytest.raises(DataError, match=r"shape \(n, 3\), got \(500, 2\)"):
        plain.log_prob_batched(x[:, :2])
    with pytest.raises(DataError, match="unconditional"):
        plain.sample_batched(5, c[:5])
    with pytest.raises(DataError, match="conditional on"):
        conditional.log_prob_batched(x)
    with pytest.raises(DataError, match="10 rows of conditions for 500 events"):
        conditional.log_prob_batched(x, c[:10])


def test_saved_spec_carries_its_format_and_package_version(tmp_path):
    model, x, _ = make_flow()
    save_flow(model, tmp_path / "model")
    raw = json.loads((tmp_path / "model" / "spec.json").read_text())
    assert raw["format_version"] == FORMAT_VERSION
    assert raw["package_version"] == fedhex_hpc.__version__
    # a spec.json from before format versions is format 1
    for key in ("format_version", "package_version"):
        del raw[key]
    (tmp_path / "model" / "spec.json").write_text(json.dumps(raw))
    np.testing.assert_array_equal(
        load_flow(tmp_path / "model").log_prob(x).numpy(), model.log_prob(x).numpy()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 2}, r"format_version 2 is not readable.*flow format 1 to 1"),
        ({"coupling": "spline"}, r"unknown field 'coupling' in flow format 1"),
        ({"preprocessing": {"clip": 1}}, r"unknown field 'preprocessing.clip'"),
    ],
    ids=["newer-format", "unknown-field", "unknown-nested-field"],
)
def test_spec_from_a_newer_version_is_a_one_line_error(tmp_path, change, message):
    model, _, _ = make_flow()
    save_flow(model, tmp_path / "model")
    spec_file = tmp_path / "model" / "spec.json"
    raw = json.loads(spec_file.read_text())
    raw["package_version"] = "9.0.0"
    raw["preprocessing"].update(change.pop("preprocessing", {}))
    raw.update(change)
    spec_file.write_text(json.dumps(raw))
    with pytest.raises(RunDirError) as err:
        load_flow(tmp_path / "model")
    text = str(err.value)
    assert "\n" not in text
    assert str(spec_file) in text
    assert "written by fedhex-hpc 9.0.0" in text
    assert f"read by fedhex-hpc {fedhex_hpc.__version__}" in text
    assert re.search(message, text), text


@pytest.mark.parametrize("transform", ["affine", "spline"])
def test_one_feature_spline_flow_learns_a_peak_that_an_affine_flow_cannot(transform):
    # A narrow peak on a falling background (INNFER's GaussianWithExpBkg shape). With one
    # feature an affine MAF block is affine in x, so under standardisation the flow is a
    # normal distribution whatever its weights: it cannot do better than the fitted normal.
    rng = np.random.default_rng(0)
    n = 2000
    background = 160 + rng.exponential(20, 4 * n)
    background = background[background < 185][:n]
    x = np.where(rng.uniform(size=n) < 0.3, rng.normal(172, 1.72, n), background)
    x = x[:, None].astype(np.float32)
    fitted_normal = 0.5 * np.log(2 * np.pi * np.e * x.var())
    model, _, _ = make_flow(n_features=1, transform=transform, n_blocks=2)
    spec = dataclasses.replace(model.spec, preprocessing=fit_preprocessing(x, "standardize"))
    model = FlowModel(spec)
    optimizer = tf.keras.optimizers.Adam(1e-2)
    events = tf.constant(x)

    @tf.function
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(model.log_prob(events))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    for _ in range(150):
        step()
    nll = float(-tf.reduce_mean(model.log_prob(events)))
    if transform == "affine":
        assert nll > fitted_normal - 1e-4
    else:
        assert nll < fitted_normal - 0.08
