"""``fedhex train``: create or resume a run directory and train its flow."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TextIO

from fedhex_hpc._tf import tf
from fedhex_hpc.config import Config, TrainConfig, config_to_dict
from fedhex_hpc.data.training import TrainingData, load_training_data
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.flows import FlowModel, build_flow, load_flow
from fedhex_hpc.runs import RunDir
from fedhex_hpc.train import Preempted, Trainer, TrainResult, stop_on_signals
from fedhex_hpc.train.distributed import Distributed, launcher_size, setup_distributed

__all__ = ["configure_parallelism", "ensure_trained", "final_flow", "new_flow", "train_run"]


def new_flow(config: Config, data: TrainingData) -> FlowModel:
    """A fresh flow for ``config`` whose preprocessing is fitted on the training data."""
    sample = data.fit_sample
    return build_flow(
        config.flow,
        config.run.seed,
        sample.x,
        sample.cond,
        data.feature_names,
        data.condition_names,
    )


def _shards(train: TrainConfig) -> int:
    """Row parts per batch: ``train.shards``, or for 0 one per thread on a CPU.

    The threads are ``train.threads``, else the ``TF_NUM_INTRAOP_THREADS`` a
    scheduler gave the task, else the cores this process may run on. The automatic
    choice is 1 on a GPU, with several ranks (each rank's batch is already a part of
    the global one) and with ``jit_compile`` (XLA runs the kernels of its one
    program one after another, so parts would not run side by side).
    """
    if train.shards:
        return train.shards
    if train.jit_compile or launcher_size() > 1 or tf.config.list_physical_devices("GPU"):
        return 1
    scheduled = os.environ.get("TF_NUM_INTRAOP_THREADS", "")
    return (
        train.threads
        or (int(scheduled) if scheduled.isdigit() else 0)
        or len(os.sched_getaffinity(0))
    )


def _set_threads(intra: int, inter: int) -> None:
    """Size TensorFlow's thread pools, unless this process already started TensorFlow.

    Thread counts only change speed, so a second training in one process (tests,
    notebooks) keeps the pools the first one made.
    """
    threading = tf.config.threading
    current = (
        threading.get_intra_op_parallelism_threads(),
        threading.get_inter_op_parallelism_threads(),
    )
    if current == (intra, inter):
        return
    try:
        threading.set_intra_op_parallelism_threads(intra)
        threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        pass  # TensorFlow is initialised: its pools are fixed for this process


def configure_parallelism(train: TrainConfig) -> int:
    """Size the thread pools for ``train`` and return the row parts per batch.

    With several parts every kernel runs on one thread and the parts run side by
    side on one inter-op thread each; with one part ``train.threads`` sizes both
    pools (0 leaves TensorFlow's defaults).
    """
    shards = _shards(train)
    if shards > 1:
        _set_threads(1, shards)
    elif train.threads:
        _set_threads(train.threads, train.threads)
    return shards


def final_flow(run: RunDir, train: TrainConfig) -> FlowModel:
    """The run's final flow, set up to sample and score as fast as its training ran.

    The row parts and thread pools follow ``train`` (the run's ``train`` section), as
    in :func:`configure_parallelism`, except that ``jit_compile`` does not make them 1:
    sampling compiles each part with XLA either way.
    """
    model = load_flow(run.model)
    model.shards = configure_parallelism(dataclasses.replace(train, jit_compile=False))
    return model


def _open_run(config: Config | None, run_dir: Path, resume: bool, dist: Distributed) -> RunDir:
    """Rank 0 creates (or opens) the run folder; the other ranks open it after a barrier."""
    if dist.is_root:
        run = RunDir.open(run_dir) if resume else RunDir.create(run_dir, config)
        run.write_environment()
    dist.sum([0.0])  # barrier: the folder exists before any other rank opens it
    return run if dist.is_root else RunDir.open(run_dir)


def train_run(
    config: Config | None,
    run_dir: str | Path,
    resume: bool = False,
    stream: TextIO | None = None,
) -> TrainResult:
    """Train ``config`` into ``run_dir`` (a new run, or the existing one with ``resume``).

    Under an MPI launcher every rank calls this; rank 0 owns the run folder.

    Raises:
        Preempted: USR1/TERM arrived; the run holds a checkpoint at that step.
    """
    run_dir = Path(run_dir)
    if resume:
        config = RunDir.open(run_dir).config()
    shards = configure_parallelism(config.train)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    dist = setup_distributed(config.train.distributed)
    run = _open_run(config, run_dir, resume, dist)
    data = load_training_data(
        config.data, config.run.seed, config.train.batch_size, config.train.shuffle, dist.ranks
    )
    model = new_flow(config, data)
    model.shards = shards
    trainer = Trainer(model, config, data, run, stream, dist)
    status = run.set_status if dist.is_root else (lambda *args, **kwargs: None)
    status("running", ranks=dist.ranks.size, row_parts=shards)
    try:
        with stop_on_signals(trainer.request_stop):
            result = trainer.fit(resume=resume)
    except Preempted:
        raise  # the trainer recorded it before any rank exited
    except Exception as exc:
        status("failed", message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    status(
        "done",
        reason=result.reason,
        epochs=result.state.epoch,
        best_epoch=result.state.best_epoch,
        best_val_loss=result.state.best_val,
        val_outside_domain=result.val_outside_domain,
        ranks=dist.ranks.size,
        row_parts=shards,
    )
    return result


def ensure_trained(config: Config, run_dir: str | Path, stream: TextIO | None = None) -> RunDir:
    """Train ``config`` into ``run_dir`` unless a finished run is there; resume a started one.

    A started run resumes with its own stored config, which must match ``config``:
    a study never silently reuses a run trained from other settings.

    Raises:
        ConfigError: ``run_dir`` holds a run of another config.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        train_run(config, run_dir, stream=stream)
        return RunDir.open(run_dir)
    run = RunDir.open(run_dir)
    if config_to_dict(run.config()) != config_to_dict(config):
        raise ConfigError(
            f"{run_dir} holds a run of another config; delete it or rerun the task with --force"
        )
    if run.status().get("state") != "done":
        train_run(None, run_dir, resume=True, stream=stream)
    return run
