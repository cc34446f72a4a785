"""Training recipe keys: weight decay, epoch-pass batch-norm statistics, the best-epoch ensemble."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fedhex_hpc._tf import tf
from fedhex_hpc.config import parse_config
from fedhex_hpc.data import load_splits
from fedhex_hpc.errors import ConfigError, Preempted
from fedhex_hpc.flows import load_flow
from fedhex_hpc.train import Trainer, mean_log_prob
from fedhex_hpc.train.step import build_train_step

from .conftest import small_raw
from .test_train import hook_step, make_trainer, weights

BN = {"n_blocks": 3, "batch_norm": True}


def test_recipe_keys_default_to_the_old_behaviour_and_reject_bad_values():
    config = parse_config(small_raw())
    assert config.train.weight_decay == 0.0
    assert config.train.keep_best_epochs == 0
    assert config.flow.batch_norm_stats == "moving"
    with pytest.raises(ConfigError, match=r"train\.weight_decay must be >= 0"):
        parse_config(small_raw(train={"weight_decay": -1e-6}))
    with pytest.raises(ConfigError, match=r"flow\.batch_norm_stats must be one of 'moving'"):
        parse_config(small_raw(flow={"batch_norm_stats": "full"}))
    with pytest.raises(ConfigError, match=r"train\.keep_best_epochs must be a non-negative"):
        parse_config(small_raw(train={"keep_best_epochs": -1}))


def _moving_stats(model):
    return [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in model.batch_norms]


def test_epoch_pass_sets_batch_norm_statistics_to_the_training_set_moments(tmp_path):
    config = parse_config(
        small_raw(flow={**BN, "batch_norm_stats": "epoch_pass"}, train={"max_epochs": 1})
    )
    trainer, _ = make_trainer(config, tmp_path / "run")
    model = trainer.model
    initial = _moving_stats(model)
    during = []
    hook_step(trainer, 5, lambda t: during.append(_moving_stats(t.model)))
    trainer.fit()
    for (mean0, var0), (mean, var) in zip(initial, during[0], strict=True):
        np.testing.assert_array_equal(mean, mean0)  # frozen while the epoch trains
        np.testing.assert_array_equal(var, var0)

    x = load_splits(config.data, config.run.seed).train.x.astype(np.float64)
    # the first batch norm's input: standardised events through the first MADE block
    pre = model.spec.preprocessing.scaling
    z = (x - np.asarray(pre.mean)) / np.asarray(pre.std)
    shift, log_scale = (t.numpy() for t in model.mades[0](tf.constant(z, tf.float32)))
    z = (z - shift) * np.exp(-log_scale)
    layer = model.batch_norms[0]
    np.testing.assert_allclose(layer.moving_mean.numpy(), z.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), z.var(axis=0), rtol=1e-4)
    # every layer: inference with the stored statistics equals one training-mode batch
    # of the whole training set (what CATHODE's full pass uses)
    stored = model.log_prob(x, training=False).numpy()
    full_batch = model.log_prob(x, training=True).numpy()
    np.testing.assert_allclose(stored, full_batch, rtol=2e-4, atol=2e-4)
    assert not np.allclose(layer.moving_variance.numpy(), initial[0][1])


def test_moving_statistics_still_update_every_step_by_default(tmp_path):
    config = parse_config(small_raw(flow=BN, train={"max_epochs": 1}))
    trainer, _ = make_trainer(config, tmp_path / "run")
    initial = _moving_stats(trainer.model)
    during = []
    hook_step(trainer, 1, lambda t: during.append(_moving_stats(t.model)))
    trainer.fit()
    assert not np.array_equal(during[0][0][0], initial[0][0])


def test_weight_decay_adds_an_l2_term_to_the_gradient(tmp_path):
    config = parse_config(small_raw())
    decay = 0.05
    x = tf.constant(load_splits(config.data, config.run.seed).train.x[:256], tf.float32)
    seed = tf.constant([0, 0], tf.int64)
    finals = {}
    for kind in ("decayed", "l2_loss", "plain"):
        trainer, _ = make_trainer(config, tmp_path / kind)
        model, variables = trainer.model, trainer.model.trainable_variables
        optimizer = tf.keras.optimizers.Adam(learning_rate=1e-2)
        if kind == "l2_loss":

            @tf.function
            def step(x, cond, weight, seed, model=model, variables=variables, opt=optimizer):
                with tf.GradientTape() as tape:
                    loss = -tf.reduce_mean(model.log_prob(x, training=True))
                    loss += 0.5 * decay * tf.add_n([tf.reduce_sum(v**2) for v in variables])
                grads = tape.gradient(loss, variables)
                opt.apply_gradients(zip(grads, variables, strict=True))
        else:
            step = build_train_step(
                model, optimizer, weight_decay=decay if kind == "decayed" else 0.0
            )
        for _ in range(3):
            step(x, None, None, seed)
        finals[kind] = weights(model)
    for a, b in zip(finals["decayed"], finals["l2_loss"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(
        not np.allclose(a, b) for a, b in zip(finals["decayed"], finals["plain"], strict=True)
    )


def _ensemble(run):
    members = json.loads((run / "ensemble" / "ensemble.json").read_text())["members"]
    return members, [weights(load_flow(run / "ensemble" / m["path"])) for m in members]


def test_ensemble_keeps_exactly_the_k_best_epochs_across_a_kill_and_resume(tmp_path):
    train = {"max_epochs": 7, "checkpoint_every": 3, "keep_best_epochs": 3}
    config = parse_config(small_raw(train={**train, "learning_rate": 2e-2}))
    straight, data = make_trainer(config, tmp_path / "a")
    straight.fit()
    stopped, _ = make_trainer(config, tmp_path / "b")
    hook_step(stopped, 8 * 4 + 3, Trainer.request_stop)  # 8 steps per epoch: in epoch 5
    with pytest.raises(Preempted):
        stopped.fit()
    resumed, _ = make_trainer(config, tmp_path / "b", resume=True)
    resumed.fit(resume=True)

    history = pd.read_csv(tmp_path / "b" / "history.csv")
    best = history.nsmallest(3, "val_loss")["epoch"].tolist()
    members_a, weights_a = _ensemble(tmp_path / "a")
    members_b, weights_b = _ensemble(tmp_path / "b")
    assert [m["epoch"] for m in members_b] == best
    assert members_a == members_b
    assert sorted(p.name for p in (tmp_path / "b" / "ensemble").iterdir()) == sorted(
        [f"epoch-{e:06d}" for e in best] + ["ensemble.json"]
    )
    for a, b in zip(weights_a, weights_b, strict=True):
        for va, vb in zip(a, b, strict=True):
            np.testing.assert_array_equal(va, vb)
    for member in members_b:  # each folder holds the weights of its epoch
        model = load_flow(tmp_path / "b" / "ensemble" / member["path"])
        loss = history.set_index("epoch").loc[member["epoch"], "val_loss"]
        assert -mean_log_prob(model, data.val) == pytest.approx(loss, abs=1e-5)


def test_epoch_pass_statistics_of_a_spline_flow_are_its_training_set_moments(tmp_path):
    flow = {**BN, "batch_norm_stats": "epoch_pass", "transform": "spline"}
    config = parse_config(small_raw(flow=flow, train={"max_epochs": 1}))
    trainer, _ = make_trainer(config, tmp_path / "run")
    trainer.fit()
    x = load_splits(config.data, config.run.seed).train.x
    stored = trainer.model.log_prob(x, training=False).numpy()
    full_batch = trainer.model.log_prob(x, training=True).numpy()
    np.testing.assert_allclose(stored, full_batch, rtol=2e-4, atol=2e-4)
