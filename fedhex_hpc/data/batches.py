"""Batches for training: the same interface for arrays in memory and shards on disk.

Every epoch is determined by (seed, epoch): the order of events, and for
data-parallel training the part each rank sees. With ``size`` ranks, each rank
takes a disjoint slice of the epoch's permutation and every rank runs exactly the
same number of steps (unequal step counts hang collective all-reduces).
Too few events for the ranks and batch size is a one-line error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fedhex_hpc.data.arrays import Arrays
from fedhex_hpc.errors import DataError
from fedhex_hpc.seeding import rng

__all__ = ["SINGLE_PROCESS", "BatchSource", "InMemoryBatches", "RankInfo", "stack_batches"]


@dataclass(frozen=True)
class RankInfo:
    """This process's place among data-parallel workers."""

    rank: int = 0
    size: int = 1


SINGLE_PROCESS = RankInfo()


class BatchSource(Protocol):
    """What the trainer iterates over."""

    steps_per_epoch: int
    events_per_epoch: int

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Arrays]:
        """The batches of ``epoch`` from step ``start_step`` on."""
        ...


class InMemoryBatches:
    """Shuffled batches of arrays held in memory; this rank's disjoint share each epoch.

    With one rank the last, partial batch is kept. With ``size`` ranks, global
    step ``k`` covers events ``k*G .. (k+1)*G`` of the epoch's permutation
    (``G = size * batch_size``) and rank ``r`` takes the ``r``-th slice of it, so
    ``size`` ranks with batch ``B`` see exactly the batches one process with
    batch ``size * B`` would; the events past the last full global batch are left
    out of that epoch (different ones each epoch).
    """

    def __init__(
        self,
        data: Arrays,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        ranks: RankInfo = SINGLE_PROCESS,
    ) -> None:
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.ranks = ranks
        n = len(data)
        if ranks.size == 1:
            self.events_per_epoch = n
        else:
            self.events_per_epoch = n // (batch_size * ranks.size) * batch_size
            if self.events_per_epoch == 0:
                raise DataError(
                    f"{n} training events are too few for batch size {batch_size} on "
                    f"{ranks.size} ranks; lower train.batch_size or use fewer ranks"
                )
        self.steps_per_epoch = math.ceil(self.events_per_epoch / batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """Indices of this rank's events in ``epoch``, in training order."""
        n = len(self.data)
        perm = rng(self.seed, "batch_order", epoch).permutation(n) if self.shuffle else np.arange(n)
        size = self.ranks.size
        if size == 1:
            return perm
        used = perm[: self.steps_per_epoch * self.batch_size * size]
        return used.reshape(self.steps_per_epoch, size, self.batch_size)[:, self.ranks.rank].ravel()

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Arrays]:
        """The batches of ``epoch`` from step ``start_step`` on."""
        order = self.order(epoch)
        for step in range(start_step, self.steps_per_epoch):
            yield self.data.take(order[step * self.batch_size : (step + 1) * self.batch_size])


def stack_batches(
    batches: Iterable[Arrays], per_stack: int, first_step: int = 0
) -> Iterator[Arrays]:
    """Consecutive equal-sized batches stacked along a new leading step axis.

    A stack ends after every step whose number (counted from ``first_step``, the
    step of the first batch) is a multiple of ``per_stack``, and before a batch
    of another size, so a run resumed at a stack boundary stacks its remaining
    steps exactly as an uninterrupted one does.

    Args:
        batches: Batches of ``(B, d)`` features and ``(B, c)`` conditions / ``(B,)``
            weights when present.
        per_stack: Most steps per stack.
        first_step: Number of the first batch's step within its epoch.

    Yields:
        Arrays of ``(k, B, d)``, ``(k, B, c)`` and ``(k, B)``, k <= ``per_stack``.
    """
    group: list[Arrays] = []
    step = first_step
    for batch in batches:
        if group and len(batch) != len(group[0]):
            yield _stack(group)
            group = []
        group.append(batch)
        step += 1
        if step % per_stack == 0:
            yield _stack(group)
            group = []
    if group:
        yield _stack(group)


def _stack(group: list[Arrays]) -> Arrays:
    first = group[0]
    return Arrays(
        np.stack([b.x for b in group]),
        None if first.cond is None else np.stack([b.cond for b in group]),
        None if first.weight is None else np.stack([b.weight for b in group]),
    )
