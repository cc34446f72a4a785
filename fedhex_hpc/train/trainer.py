"""The training loop: a compiled step, epochs, validation, early stopping, checkpoints.

The loop knows nothing about clusters: data-parallel training enters only through
the hooks of :class:`~fedhex_hpc.train.distributed.Distributed` (gradient
all-reduce, broadcast, sums over ranks), and only rank 0 writes files. The loop
checks a stop flag after every step; a signal handler (see
:mod:`fedhex_hpc.train.preemption`) sets it, and all ranks then stop at the same
step, rank 0 writes a checkpoint there, and :class:`Preempted` is raised.
With ``train.keep_best_epochs: k`` the checkpoints also hold the weights of the k
epochs with the lowest validation loss, and rank 0 exports them to ``RUN/ensemble/``
(one saved flow per epoch and ``ensemble.json``, swapped in as one folder).
Everything random is derived from ``run.seed`` and the epoch/step counters, so a
resumed run takes exactly the steps an uninterrupted one would have.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from fedhex_hpc._tf import tf
from fedhex_hpc.config import Config
from fedhex_hpc.data import Arrays
from fedhex_hpc.data.batches import stack_batches
from fedhex_hpc.data.domain import describe_outside, split_by_domain
from fedhex_hpc.data.training import TrainingData
from fedhex_hpc.errors import Preempted, TrainingError
from fedhex_hpc.flows import FlowModel, save_flow
from fedhex_hpc.flows.batch_norm import freeze_batch_norm, set_batch_norm_statistics
from fedhex_hpc.io_utils import atomic_directory, write_json_atomic
from fedhex_hpc.runs import RunDir
from fedhex_hpc.train.checkpoints import CheckpointStore, TrainState
from fedhex_hpc.train.distributed import Distributed, SingleProcess
from fedhex_hpc.train.history import History
from fedhex_hpc.train.progress import Progress
from fedhex_hpc.train.schedules import learning_rate_at
from fedhex_hpc.train.step import build_train_steps, steps_per_call

__all__ = ["ENSEMBLE_FILE", "TrainResult", "Trainer", "log_prob_sums", "mean_log_prob"]

#: Members of ``RUN/ensemble/``: their epochs, validation losses and folders.
ENSEMBLE_FILE = "ensemble.json"


@dataclass(frozen=True)
class TrainResult:
    """How training ended (``completed`` or ``early_stopped``), on which rank, and how
    many validation events val_loss left out (outside the flow's domain)."""

    reason: str
    state: TrainState
    rank: int = 0
    val_outside_domain: int = 0


class WeightCopy(tf.Module):
    """A non-trainable copy of a list of variables (the best weights so far)."""

    def __init__(self, variables: list[tf.Variable]) -> None:
        super().__init__(name="best")
        self.values = [tf.Variable(v, trainable=False) for v in variables]

    def copy_from(self, variables: list[tf.Variable]) -> None:
        """Overwrite the copy with ``variables``."""
        for dst, src in zip(self.values, variables, strict=True):
            dst.assign(src)

    def copy_to(self, variables: list[tf.Variable]) -> None:
        """Overwrite ``variables`` with the copy."""
        for dst, src in zip(variables, self.values, strict=True):
            dst.assign(src)


def log_prob_sums(model: FlowModel, data: Arrays) -> tuple[float, float]:
    """(sum of w * log q, sum of w) over ``data``; w = 1 without event weights."""
    logq = model.log_prob_batched(data.x, data.cond)
    weight = np.ones(len(data)) if data.weight is None else data.weight.astype(np.float64)
    return float(np.sum(weight * logq)), float(np.sum(weight))


def mean_log_prob(model: FlowModel, data: Arrays) -> float:
    """Event-weighted mean log-likelihood of ``data`` under ``model`` (float64)."""
    total, weight = log_prob_sums(model, data)
    return total / weight


class Trainer:
    """Trains ``model`` on ``data`` as ``config.train`` says, writing into ``run``."""

    def __init__(
        self,
        model: FlowModel,
        config: Config,
        data: TrainingData,
        run: RunDir,
        stream: TextIO | None = None,
        dist: Distributed | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.cfg = config.train
        self.data = data
        self.run = run
        self.dist = dist or SingleProcess()
        self.stream = stream
        self.stop_requested = False
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=self.cfg.learning_rate)
        self.optimizer.build(model.trainable_variables)
        self.best = WeightCopy(model.variables)
        self.ensemble = [WeightCopy(model.variables) for _ in range(self.cfg.keep_best_epochs)]
        self._exported_ensemble: list | None = None
        self._epoch_pass = config.flow.batch_norm_stats == "epoch_pass" and bool(model.batch_norms)
        if self._epoch_pass:
            freeze_batch_norm(model)
        self.store = CheckpointStore(run.checkpoints, self.cfg.keep_checkpoints)
        self.history = History(run.history_file)
        if data.weight_mean <= 0:
            raise TrainingError("the training event weights sum to a non-positive value")
        distributed = self.dist.ranks.size > 1
        self._steps = build_train_steps(
            model,
            self.optimizer,
            config.flow.noise_std,
            data.weight_mean,
            self.cfg.jit_compile,
            self.dist.wrap_tape if distributed else None,
            self.cfg.weight_decay,
        )
        #: steps per compiled call (one with several ranks: the variables are
        #: broadcast after the first step, and stop requests are polled per call)
        self.steps_per_call = 1 if distributed else steps_per_call(self.cfg.batch_size)
        self._exported_best_epoch = -1
        self._broadcast_done = False
        # this rank's share of the validation events; losses are summed over ranks.
        # Events outside the flow's domain (density zero) are left out of val_loss.
        ranks = self.dist.ranks
        val = split_by_domain(model, data.val.take(slice(ranks.rank, None, ranks.size)))
        self._val = val.inside
        self._val_outside = [val.n_outside, *val.outside_counts.ravel().tolist()]

    @property
    def objects(self) -> dict[str, tf.Module]:
        """Everything a checkpoint holds."""
        slots = {f"ensemble_{i}": copy for i, copy in enumerate(self.ensemble)}
        return {"flow": self.model, "optimizer": self.optimizer, "best": self.best, **slots}

    def request_stop(self) -> None:
        """Ask the loop to checkpoint after the current step and raise :class:`Preempted`."""
        self.stop_requested = True

    def _restore(self) -> TrainState:
        latest = self.store.latest()
        if latest is None:
            return TrainState()
        state = self.store.restore(latest, self.objects)
        self._exported_best_epoch = state.best_epoch
        self._exported_ensemble = None  # the folder may lag the checkpoint: export again
        return state

    def _save_copy(self, copy: WeightCopy, path: Path) -> None:
        """Save the flow with the weights of ``copy`` to ``path``; the model is unchanged."""
        current = [v.numpy() for v in self.model.variables]
        copy.copy_to(self.model.variables)
        save_flow(self.model, path)
        for var, value in zip(self.model.variables, current, strict=True):
            var.assign(value)

    def _keep_in_ensemble(self, state: TrainState, val_loss: float) -> None:
        """Put the current weights into the ensemble if epoch ``state.epoch`` is among the
        ``keep_best_epochs`` lowest validation losses so far (replacing the worst)."""
        members = [list(m) for m in state.ensemble]
        if len(members) < len(self.ensemble):
            slot = len(members)
            members.append([])
        else:
            slot = max(range(len(members)), key=lambda s: members[s][1])
            if not val_loss < members[slot][1]:
                return
        members[slot] = [state.epoch, val_loss]
        self.ensemble[slot].copy_from(self.model.variables)
        state.ensemble = members

    def _export_ensemble(self, state: TrainState) -> None:
        """Write ``RUN/ensemble/`` (rank 0) if its members changed since the last export."""
        if not self.ensemble or state.ensemble == self._exported_ensemble:
            return
        order = sorted(range(len(state.ensemble)), key=lambda s: state.ensemble[s][1])
        members = []
        with atomic_directory(self.run.ensemble) as tmp:
            for slot in order:
                epoch, val_loss = state.ensemble[slot]
                name = f"epoch-{epoch:06d}"
                self._save_copy(self.ensemble[slot], tmp / name)
                members.append({"epoch": epoch, "val_loss": val_loss, "path": name})
            write_json_atomic(tmp / ENSEMBLE_FILE, {"members": members})
        self._exported_ensemble = [list(m) for m in state.ensemble]

    def _checkpoint(self, state: TrainState) -> None:
        if not self.dist.is_root:
            return
        self.store.save(state, self.objects)
        if state.best_epoch and state.best_epoch != self._exported_best_epoch:
            self._save_copy(self.best, self.run.checkpoints / "best")
            self._exported_best_epoch = state.best_epoch
        self._export_ensemble(state)

    def _report_val_outside(self, progress: Progress) -> int:
        """Say (on rank 0) how many validation events val_loss leaves out; all ranks call.

        Returns:
            That number, summed over ranks.
        """
        n_outside, *counts = self.dist.sum([float(v) for v in self._val_outside])
        n_total = len(self.data.val)
        if not n_outside:
            return 0
        text = describe_outside(
            self.model,
            int(n_outside),
            n_total,
            np.reshape(counts, (-1, 2)).astype(int),
            "validation",
        )
        if n_outside >= n_total:
            raise TrainingError(f"no validation loss: {text}")
        if self.dist.is_root:
            progress.message(f"val_loss leaves out {text}")
        return int(n_outside)

    def _outside_cause(self, epoch: int) -> str:
        """Why the training loss of ``epoch`` (1-based) may be infinite: events outside the
        domain in this rank's batches, or training noise carrying events there."""
        counts = np.zeros((self.model.spec.n_features, 2), np.int64)
        n_outside, n_total = 0, 0
        for batch in self.data.train.epoch(epoch - 1):
            split = split_by_domain(self.model, batch)
            counts = counts + split.outside_counts
            n_outside += split.n_outside
            n_total += len(batch)
        if n_outside:
            text = describe_outside(self.model, n_outside, n_total, counts, "training")
            return f"; {text}: raise flow.logit_alpha or use flow.preprocessing: standardize"
        if self.config.flow.noise_std > 0 and self.model.spec.preprocessing.kind == "logit":
            return (
                f"; training noise (flow.noise_std={self.config.flow.noise_std}) can carry "
                "events beyond the logit range: lower it or raise flow.logit_alpha"
            )
        return ""

    def _fail_non_finite(self, epoch: int, what: str) -> None:
        latest = self.store.latest()
        cause = self._outside_cause(epoch) if what == "training loss" else ""
        if latest is None:
            hint = cause or " (lower train.learning_rate or flow.log_scale_bound)"
            raise TrainingError(
                f"non-finite {what} at epoch {epoch} before any checkpoint was written; "
                f"no model was saved{hint}"
            )
        state = self.store.restore(latest, self.objects)
        if self.cfg.restore_best and state.best_epoch:
            self.best.copy_to(self.model.variables)
        if self.dist.is_root:
            save_flow(self.model, self.run.model)
        raise TrainingError(
            f"non-finite {what} at epoch {epoch}; model/ holds checkpoint {latest.name}"
            f" (best epoch {state.best_epoch}){cause}"
        )

    def _train_epoch(self, state: TrainState) -> tuple[float, int]:
        """Run the steps of epoch ``state.epoch`` from ``state.step``; return (loss sum, events).

        Raises:
            Preempted: after checkpointing, when a stop was requested on any rank.
        """
        epoch, batches = state.epoch, self.data.train
        steps = batches.steps_per_epoch
        started = time.perf_counter()
        losses, events = [], 0
        step = state.step
        stacks = stack_batches(batches.epoch(epoch, step), self.steps_per_call, step)
        for stack in stacks:
            n_steps, batch_size = stack.x.shape[:2]
            seeds = [[self.config.run.seed, epoch * steps + s] for s in range(step, step + n_steps)]
            loss = self._steps(
                tf.constant(stack.x),
                None if stack.cond is None else tf.constant(stack.cond),
                None if stack.weight is None else tf.constant(stack.weight),
                tf.constant(seeds, tf.int64),
            )
            if not self._broadcast_done:
                self.dist.after_first_step([*self.model.variables, *self.optimizer.variables()])
                self._broadcast_done = True
            losses.append(tf.reduce_sum(loss) * batch_size)
            events += n_steps * batch_size
            step += n_steps
            if self.dist.any(self.stop_requested):
                state.loss_sum += float(tf.add_n(losses))
                state.loss_count += events
                state.step = step
                state.seconds += time.perf_counter() - started
                message = (
                    f"stopped at epoch {epoch + 1} step {step}/{steps}; "
                    f"checkpoint {state.name} written"
                )
                if self.dist.is_root:
                    self.store.save(state, self.objects)
                    # recorded before any rank exits: a launcher may kill the others
                    # as soon as one rank ends with a non-zero status
                    self.run.set_status("preempted", message=message)
                self.dist.sum([0.0])  # no rank leaves before the checkpoint exists
                raise Preempted(message)
        return state.loss_sum + (float(tf.add_n(losses)) if losses else 0.0), events

    def _log_epoch(self, state: TrainState, row: dict[str, float], writer, progress) -> None:
        if not self.dist.is_root:
            return
        self.history.append(row)
        with writer.as_default(step=state.epoch):
            for key in ("loss", "val_loss", "learning_rate"):
                tf.summary.scalar(key, row[key])
        progress.epoch(state.epoch, row["loss"], row["val_loss"], row["events_per_s"])

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until max epochs or early stop; returns how it ended.

        Raises:
            Preempted: a stop was requested; a checkpoint at the current step exists.
            TrainingError: the loss became NaN/Inf; model/ holds the last good checkpoint.
        """
        cfg = self.cfg
        state = self._restore() if resume else TrainState()
        root = self.dist.is_root
        if root:
            self.history.truncate(state.epoch)
        self._broadcast_done = False
        progress = Progress(cfg.max_epochs, cfg.log_every, self.stream)
        val_outside = self._report_val_outside(progress)
        writer = tf.summary.create_file_writer(str(self.run.tensorboard)) if root else None
        patience = cfg.early_stopping.patience
        stopped_early = patience > 0 and state.wait >= patience  # resumed after an early stop
        reason = "early_stopped" if stopped_early else "completed"
        while not stopped_early and state.epoch < cfg.max_epochs:
            learning_rate = learning_rate_at(state.epoch, cfg, self.dist.ranks.size)
            self.optimizer.learning_rate.assign(learning_rate)
            started = time.perf_counter()
            loss_sum, events = self._train_epoch(state)
            if self._epoch_pass:
                batches = ((b.x, b.cond) for b in self.data.train.epoch(state.epoch))
                set_batch_norm_statistics(self.model, batches, self.dist.sum)
            val_sum, val_weight = log_prob_sums(self.model, self._val)
            loss_sum, train_events, val_sum, val_weight, all_events = self.dist.sum(
                [loss_sum, state.loss_count + events, val_sum, val_weight, events]
            )
            train_loss, val_loss = loss_sum / train_events, -val_sum / val_weight
            seconds = time.perf_counter() - started
            state = TrainState(
                epoch=state.epoch + 1,
                best_val=state.best_val,
                best_epoch=state.best_epoch,
                wait=state.wait,
                seconds=state.seconds + seconds,
                ensemble=state.ensemble,
            )
            if not math.isfinite(train_loss):
                self._fail_non_finite(state.epoch, "training loss")
            if not math.isfinite(val_loss):
                self._fail_non_finite(state.epoch, "validation loss")
            if val_loss < state.best_val - cfg.early_stopping.min_delta:
                state.best_val, state.best_epoch, state.wait = val_loss, state.epoch, 0
                self.best.copy_from(self.model.variables)
            else:
                state.wait += 1
            if self.ensemble:
                self._keep_in_ensemble(state, val_loss)
            row = {
                "epoch": state.epoch,
                "loss": train_loss,
                "val_loss": val_loss,
                "learning_rate": learning_rate,
                "seconds": seconds,
                "events_per_s": all_events / seconds,
            }
            self._log_epoch(state, row, writer, progress)
            stop_early = patience > 0 and state.wait >= patience
            at_interval = state.epoch % cfg.checkpoint_every == 0
            if stop_early or at_interval or state.epoch == cfg.max_epochs:
                self._checkpoint(state)
            if stop_early:
                reason = "early_stopped"
                if root:
                    progress.message(
                        f"early stop at epoch {state.epoch}: no improvement for {patience} "
                        f"epochs (best val_loss {state.best_val:.5f} at epoch {state.best_epoch})"
                    )
                break
        if writer is not None:
            writer.close()
        if cfg.restore_best and state.best_epoch:
            self.best.copy_to(self.model.variables)
        if root:
            self._export_ensemble(state)
            save_flow(self.model, self.run.model)
        return TrainResult(reason, state, self.dist.ranks.rank, val_outside)
