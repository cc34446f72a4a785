"""Training loop: learning, resume == uninterrupted, NaN guard, restore-best, checkpoints."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re

import h5py
import numpy as np
import pandas as pd
import pytest

from fedhex_hpc.config import TrainConfig, parse_config
from fedhex_hpc.data import load_splits
from fedhex_hpc.data.training import load_training_data
from fedhex_hpc.errors import Preempted, TrainingError
from fedhex_hpc.flows import fit_preprocessing, load_flow
from fedhex_hpc.runs import RunDir
from fedhex_hpc.studies.steps import (
    draw_samples,
    evaluate_run,
    new_flow,
    sample_run,
    train_run,
)
from fedhex_hpc.studies.steps.train import configure_parallelism, final_flow
from fedhex_hpc.train import Trainer, learning_rate_at, mean_log_prob

from .conftest import small_raw


def make_trainer(config, path, resume=False):
    run = RunDir.open(path) if resume else RunDir.create(path, config)
    data = load_training_data(config.data, config.run.seed, config.train.batch_size)
    return Trainer(new_flow(config, data), config, data, run), data


def hook_step(trainer: Trainer, at_step: int, action) -> None:
    """Run ``action(trainer)`` right after the compiled call that takes training step
    number ``at_step`` (1-based, counted over the whole run)."""
    steps, done = trainer._steps, [0]

    def wrapped(x, *args):
        losses = steps(x, *args)
        before, done[0] = done[0], done[0] + len(x)
        if before < at_step <= done[0]:
            action(trainer)
        return losses

    trainer._steps = wrapped


def weights(model):
    return [v.numpy() for v in model.variables]


def test_learns_a_correlated_gaussian(tmp_path):
    rng = np.random.default_rng(0)
    mean = np.array([1.0, -2.0])
    cov = np.array([[1.0, 0.8], [0.8, 1.5]])
    x = rng.multivariate_normal(mean, cov, size=20_000)
    np.savez(tmp_path / "gauss.npz", a=x[:, 0], b=x[:, 1])
    config = parse_config(
        small_raw(
            data={"source": "file", "path": str(tmp_path / "gauss.npz"), "features": ["a", "b"]},
            train={"max_epochs": 15, "batch_size": 512, "learning_rate": 5e-3},
            flow={"n_blocks": 2},
        )
    )
    train_run(config, tmp_path / "run")
    samples = draw_samples(load_flow(tmp_path / "run" / "model"), 50_000, seed=1)
    np.testing.assert_allclose(samples.mean(axis=0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(samples.T), cov, atol=0.12)


def test_row_parts_follow_the_threads_a_cpu_process_has(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert configure_parallelism(TrainConfig()) == cores
    assert configure_parallelism(TrainConfig(threads=3)) == 3
    assert configure_parallelism(TrainConfig(shards=5, jit_compile=True)) == 5
    assert configure_parallelism(TrainConfig(threads=3, jit_compile=True)) == 1
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")  # a local scheduler's task
    assert configure_parallelism(TrainConfig()) == 1
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")  # one of several ranks
    assert configure_parallelism(TrainConfig(threads=2)) == 1


def test_row_parts_train_the_loss_curve_of_one_part(tmp_path):
    histories = []
    for shards in (1, 2):
        config = parse_config(small_raw(train={"shards": shards, "batch_size": 512}))
        run = tmp_path / f"parts-{shards}"
        train_run(config, run)
        assert json.loads((run / "status.json").read_text())["row_parts"] == shards
        histories.append(pd.read_csv(run / "history.csv"))
    columns = ["epoch", "loss", "val_loss"]
    pd.testing.assert_frame_equal(histories[0][columns], histories[1][columns], rtol=1e-5)
    # sampling and scoring the run take its row parts, and draw what one part draws
    run = RunDir.open(tmp_path / "parts-2")
    assert final_flow(run, run.config().train).shards == 2
    sampled = sample_run(run.path, 3000, tmp_path / "drawn.h5", seed=4)
    one = load_flow(run.model)  # one part
    with h5py.File(sampled) as fh:
        drawn = np.stack([fh[name][:] for name in one.spec.feature_names], axis=1)
    one_part = draw_samples(one, 3000, seed=4)
    np.testing.assert_allclose(drawn, one_part, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("per_call", [1, 3, None])  # None: the default for the batch size
@pytest.mark.parametrize("stop_at", [3, 8, 13])  # mid-epoch, at an epoch end, later
def test_resume_after_preemption_equals_uninterrupted(tmp_path, stop_at, per_call):
    config = parse_config(small_raw(train={"max_epochs": 4, "checkpoint_every": 1}))

    def trainer(path, resume=False):
        made, _ = make_trainer(config, path, resume)
        made.steps_per_call = per_call or made.steps_per_call
        return made

    straight = trainer(tmp_path / "a")
    straight.fit()

    stopped = trainer(tmp_path / "b")
    hook_step(stopped, stop_at, Trainer.request_stop)
    with pytest.raises(Preempted, match="checkpoint"):
        stopped.fit()
    resumed = trainer(tmp_path / "b", resume=True)
    resumed.fit(resume=True)

    for a, b in zip(weights(straight.model), weights(resumed.model), strict=True):
        np.testing.assert_array_equal(a, b)
    hist_a, hist_b = (pd.read_csv(tmp_path / r / "history.csv") for r in ("a", "b"))
    pd.testing.assert_frame_equal(  # the partial epoch's loss is summed in two parts
        hist_a[["epoch", "loss", "val_loss", "learning_rate"]],
        hist_b[["epoch", "loss", "val_loss", "learning_rate"]],
        rtol=1e-6,
    )
    assert hist_a["val_loss"].tolist() == hist_b["val_loss"].tolist()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = parse_config(small_raw(train={"max_epochs": 6, "checkpoint_every": 2}))
    trainer, data = make_trainer(config, tmp_path / "run")

    def poison(t):
        bias = t.model.mades[0].out_bias
        bias.assign(np.full(bias.shape, np.nan, np.float32))

    trainer.steps_per_call = 1
    hook_step(trainer, 8 * 3 + 2, poison)  # 8 steps per epoch: poisoned during epoch 4
    with pytest.raises(TrainingError, match="non-finite training loss at epoch 4") as info:
        trainer.fit()
    assert "epoch-000002" in str(info.value)
    assert "\n" not in str(info.value)
    model = load_flow(tmp_path / "run" / "model")
    assert np.isfinite(mean_log_prob(model, data.val))


def test_restore_best_always_applies_and_checkpoints_are_pruned(tmp_path):
    config = parse_config(
        small_raw(
            train={
                "max_epochs": 12,
                "learning_rate": 2e-2,
                "checkpoint_every": 1,
                "keep_checkpoints": 2,
                "early_stopping": {"patience": 3},
            }
        )
    )
    result = train_run(config, tmp_path / "run")
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "done"
    model = load_flow(tmp_path / "run" / "model")
    splits = load_splits(config.data, config.run.seed)
    assert -mean_log_prob(model, splits.val) == pytest.approx(result.state.best_val, abs=1e-5)
    best = load_flow(tmp_path / "run" / "checkpoints" / "best")
    assert -mean_log_prob(best, splits.val) == pytest.approx(result.state.best_val, abs=1e-5)
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("epoch-*"))
    assert len(kept) == 2
    assert kept[-1] == f"epoch-{result.state.epoch:06d}"


def test_constant_event_weights_train_like_no_weights_and_negative_weights_run(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 2))
    np.savez(
        tmp_path / "d.npz",
        a=x[:, 0],
        b=x[:, 1],
        w2=np.full(3000, 2.0),
        wneg=rng.choice([-0.2, 1.0], size=3000, p=[0.1, 0.9]),
    )
    finals = {}
    for weight in ("", "w2", "wneg"):
        config = parse_config(
            small_raw(
                data={
                    "source": "file",
                    "path": str(tmp_path / "d.npz"),
                    "features": ["a", "b"],
                    "weight": weight,
                }
            )
        )
        trainer, _ = make_trainer(config, tmp_path / f"run{weight}")
        trainer.fit()
        finals[weight] = weights(trainer.model)
    for a, b in zip(finals[""], finals["w2"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert all(np.isfinite(v).all() for v in finals["wneg"])


def test_learning_rate_schedules_count_epochs():
    config = parse_config(
        {
            "train": {
                "learning_rate": 1e-3,
                "schedule": {
                    "kind": "polynomial",
                    "final_learning_rate": 1e-4,
                    "decay_epochs": 100,
                    "power": 0.5,
                },
            }
        }
    )
    assert learning_rate_at(0, config.train) == pytest.approx(1e-3)
    assert learning_rate_at(100, config.train) == pytest.approx(1e-4)
    assert learning_rate_at(500, config.train) == pytest.approx(1e-4)
    assert learning_rate_at(75, config.train) == pytest.approx(9e-4 * 0.5 + 1e-4)
    for kind in ("exponential", "cosine"):
        cfg = parse_config({"train": {"schedule": {"kind": kind, "decay_epochs": 10}}}).train
        assert learning_rate_at(10, cfg) == pytest.approx(cfg.schedule.final_learning_rate)


def test_sigkill_at_any_moment_leaves_only_loadable_checkpoints(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from fedhex_hpc.train import CheckpointStore

    config = tmp_path / "c.yaml"
    raw = small_raw(train={"max_epochs": 200, "checkpoint_every": 1, "keep_checkpoints": 2})
    config.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    for attempt in range(3):
        args = ["--resume", str(run)] if attempt else ["--run-dir", str(run)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "fedhex_hpc.cli", "train", str(config), *args, "--no-evaluate"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not (run / "checkpoints").is_dir() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.5, 3.0))  # lands anywhere, also inside a checkpoint write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = CheckpointStore(run / "checkpoints", keep=2)
        assert store.list(), "no complete checkpoint"
        for path in store.list():
            trainer, _ = make_trainer(parse_config(raw), run, resume=True)
            state = store.restore(path, trainer.objects)
            assert state.epoch >= 1


def file_with_events_beyond_the_training_range(tmp_path, n=3000):
    """A two-feature file whose validation and test splits hold events far beyond the
    training range (found by splitting a file of row numbers the same way)."""
    path = tmp_path / "events.npz"
    np.savez(path, a=np.arange(n, dtype=np.float64), b=np.zeros(n))
    raw = small_raw(
        data={"source": "file", "path": str(path), "features": ["a", "b"]},
        flow={"preprocessing": "logit"},
        train={"max_epochs": 2},
    )
    splits = load_splits(parse_config(raw).data, parse_config(raw).run.seed)
    rows = {name: getattr(splits, name).x[:, 0].astype(int) for name in ("val", "test")}
    x = np.random.default_rng(0).normal(size=(n, 2))
    x[rows["val"][:5], 0] = 40.0
    x[rows["val"][5:7], 1] = -40.0
    x[rows["test"][:3], 1] = 40.0
    np.savez(path, a=x[:, 0], b=x[:, 1])
    return parse_config(raw)


def test_logit_flow_leaves_events_beyond_its_range_out_of_val_loss_and_metrics(tmp_path):
    config = file_with_events_beyond_the_training_range(tmp_path)
    splits = load_splits(config.data, config.run.seed)
    pre = fit_preprocessing(splits.train.x, "logit", config.flow.logit_alpha)
    val_out = int((~pre.in_domain(splits.val.x).numpy()).sum())
    test_out = int((~pre.in_domain(splits.test.x).numpy()).sum())
    assert val_out >= 7 and test_out >= 3

    log = io.StringIO()
    result = train_run(config, tmp_path / "run", stream=log)
    assert result.reason == "completed" and result.state.epoch == 2
    assert result.val_outside_domain == val_out
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert np.all(np.isfinite(history["val_loss"]))
    line = next(x for x in log.getvalue().splitlines() if x.startswith("val_loss leaves out"))
    assert line.startswith(f"val_loss leaves out {val_out} of {len(splits.val)} validation events")
    assert "a outside [" in line and "b outside [" in line

    model = load_flow(tmp_path / "run" / "model")
    inside = model.in_domain(splits.val.x).numpy()
    assert -mean_log_prob(model, splits.val.take(inside)) == pytest.approx(
        result.state.best_val, abs=1e-5
    )
    assert np.all(model.log_prob(splits.val.x[~inside]).numpy() == -np.inf)

    metrics = evaluate_run(tmp_path / "run")
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert stored["test_outside_domain"] == metrics["test_outside_domain"] == test_out
    assert stored["training"]["val_outside_domain"] == val_out
    assert stored["test_non_finite"] == 0
    assert np.isfinite(stored["test_log_likelihood"]["value"])
    assert np.isfinite(stored["test_log_likelihood"]["stderr"])


def test_training_events_outside_the_domain_are_named_when_the_loss_is_infinite(tmp_path):
    """A preprocessing fitted on a sample that misses the extremes (as for a streamed
    training split): the infinite training loss names the features and their range."""
    config = parse_config(small_raw(flow={"preprocessing": "logit"}))
    run = RunDir.create(tmp_path / "run", config)
    data = load_training_data(config.data, config.run.seed, config.train.batch_size)
    data = dataclasses.replace(data, fit_sample=data.fit_sample.take(slice(0, 50)))
    trainer = Trainer(new_flow(config, data), config, data, run)
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    message = str(info.value)
    assert message.startswith(
        "training error: non-finite training loss at epoch 1 before any checkpoint was written; "
        "no model was saved; "
    )
    assert "of 2048 training events outside the flow's domain" in message
    assert re.search(r"x outside \[\S+, \S+\]: \d+ below, \d+ above; y outside", message)
    assert message.endswith("raise flow.logit_alpha or use flow.preprocessing: standardize")
    assert "\n" not in message


def test_logit_flow_on_a_target_evaluates_kl_and_density_plot(tmp_path):
    config = parse_config(
        small_raw(
            flow={"preprocessing": "logit"},
            train={"max_epochs": 1},
            evaluate={"n_kl_samples": 20_000, "plots": True},
        )
    )
    train_run(config, tmp_path / "run")
    metrics = evaluate_run(tmp_path / "run")
    assert metrics["kl_outside_domain"] > 0  # the KL sample reaches beyond the training range
    assert np.isfinite(metrics["kl"]["value"]) and np.isfinite(metrics["kl"]["stderr"])
    assert "plots/density.png" in metrics["plots"]
