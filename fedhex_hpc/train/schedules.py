"""Learning-rate schedules evaluated per epoch, so a rerun with another batch size
or another number of ranks decays over the same number of epochs."""

from __future__ import annotations

import math

from fedhex_hpc.config import TrainConfig

__all__ = ["learning_rate_at"]


def learning_rate_at(epoch: int, cfg: TrainConfig, ranks: int = 1) -> float:
    """Learning rate for the 0-based ``epoch`` under ``cfg.schedule`` on ``ranks`` ranks.

    With ``scale_learning_rate`` the rate is multiplied by the number of ranks
    (the global batch grows with them), reached linearly over ``warmup_epochs``.

    ``polynomial`` goes from ``learning_rate`` to ``final_learning_rate`` over
    ``decay_epochs`` with exponent ``power`` then stays there; ``exponential``
    multiplies by final/initial every ``decay_epochs``; ``cosine`` follows half a
    cosine from initial to final over ``decay_epochs``.
    """
    scale = 1.0
    if cfg.scale_learning_rate and ranks > 1:
        ramp = min(1.0, (epoch + 1) / cfg.warmup_epochs) if cfg.warmup_epochs else 1.0
        scale = 1.0 + (ranks - 1) * ramp
    return scale * _schedule(epoch, cfg)


def _schedule(epoch: int, cfg: TrainConfig) -> float:
    sched = cfg.schedule
    lr0, lr1 = cfg.learning_rate, sched.final_learning_rate
    frac = min(epoch, sched.decay_epochs) / sched.decay_epochs
    if sched.kind == "constant":
        return lr0
    if sched.kind == "polynomial":
        return (lr0 - lr1) * (1.0 - frac) ** sched.power + lr1
    if sched.kind == "exponential":
        if lr1 <= 0:
            return lr0
        return lr0 * (lr1 / lr0) ** (epoch / sched.decay_epochs)
    return lr1 + 0.5 * (lr0 - lr1) * (1.0 + math.cos(math.pi * frac))
