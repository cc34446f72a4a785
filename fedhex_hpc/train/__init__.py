"""Training: the loop, checkpoints, schedules, history and preemption handling."""

from __future__ import annotations

from fedhex_hpc.errors import Preempted
from fedhex_hpc.train.checkpoints import CheckpointStore, TrainState
from fedhex_hpc.train.preemption import PREEMPTED_EXIT_CODE, stop_on_signals
from fedhex_hpc.train.schedules import learning_rate_at
from fedhex_hpc.train.step import build_train_step
from fedhex_hpc.train.trainer import Trainer, TrainResult, mean_log_prob

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "CheckpointStore",
    "Preempted",
    "TrainResult",
    "TrainState",
    "Trainer",
    "build_train_step",
    "learning_rate_at",
    "mean_log_prob",
    "stop_on_signals",
]
