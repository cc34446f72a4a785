"""Reading a converted dataset for training: column roles, event selection, splits
held in memory, and a tf.data stream over shards for splits that do not fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fedhex_hpc.config import DataConfig
from fedhex_hpc.data.arrays import Arrays
from fedhex_hpc.data.batches import SINGLE_PROCESS, RankInfo
from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.data.shards import open_shard
from fedhex_hpc.errors import DataError
from fedhex_hpc.seeding import rng as seeded_rng

__all__ = ["DatasetView", "ShardStream"]

READ_ROWS = 65_536
SHUFFLE_BYTES = 256 * 2**20


class DatasetView:
    """The events of a dataset folder that a data config selects."""

    def __init__(self, cfg: DataConfig) -> None:
        self.folder = Path(cfg.path)
        self.manifest = Manifest.read(self.folder)
        self.cfg = cfg
        stored = self.manifest.stored_columns
        self.features = list(cfg.features) or self.manifest.names("feature")
        self.conditions = list(cfg.conditions) or self.manifest.names("condition")
        self.weight = cfg.weight or next(iter(self.manifest.names("weight")), "")
        for name in [*self.features, *self.conditions, *([self.weight] if self.weight else [])]:
            if name not in stored:
                raise DataError(f"{self.folder}: no column {name!r}; columns: {', '.join(stored)}")
        if not self.features:
            raise DataError(f"{self.folder}: no feature columns selected")
        self.region_column = cfg.region_column or (self.conditions[0] if self.conditions else "")
        if cfg.region != "all" and self.region_column not in stored:
            raise DataError(
                f"data.region {cfg.region!r} needs data.region_column; {self.folder} has no "
                f"column {self.region_column!r}"
            )
        index = {name: j for j, name in enumerate(stored)}
        self._x = _columns([index[n] for n in self.features])
        self._c = _columns([index[n] for n in self.conditions]) if self.conditions else None
        self._w = index[self.weight] if self.weight else None
        self._region = index.get(self.region_column)

    def shard_paths(self, split: str) -> list[Path]:
        """Shard files of ``split`` for the selected classes."""
        shards = self.manifest.shards_of(split, list(self.cfg.classes))
        if not shards:
            raise DataError(
                f"{self.folder}: no {split} events of classes {self.cfg.classes or 'any'}"
            )
        return [self.folder / s.path for s in shards]

    def select(self, rows: np.ndarray) -> Arrays:
        """Apply the region selection to stored rows and split them into roles."""
        if self.cfg.region != "all":
            low, high = self.cfg.signal_region
            value = rows[:, self._region]
            inside = (value >= low) & (value < high)
            rows = rows[inside if self.cfg.region == "signal" else ~inside]
        return Arrays(
            rows[:, self._x],
            rows[:, self._c] if self._c is not None else None,
            rows[:, self._w] if self._w is not None else None,
        )

    def chunks(self, split: str, order: np.ndarray | None = None) -> Iterator[Arrays]:
        """Selected events of ``split`` in chunks, shards in the given order."""
        paths = self.shard_paths(split)
        for i in order if order is not None else range(len(paths)):
            with open_shard(paths[i]) as fh:
                data = fh["data"]
                for start in range(0, data.shape[0], READ_ROWS):
                    yield self.select(data[start : start + READ_ROWS])

    def count(self, split: str) -> int:
        """Selected events of ``split``: from the manifest, or by a pass for a region cut."""
        if self.cfg.region == "all":
            return sum(s.rows for s in self.manifest.shards_of(split, list(self.cfg.classes)))
        return sum(len(chunk) for chunk in self.chunks(split))

    def stored_bytes(self, split: str) -> int:
        """Uncompressed size of the selected shards of ``split``."""
        shards = self.manifest.shards_of(split, list(self.cfg.classes))
        return sum(s.rows for s in shards) * len(self.manifest.columns) * 4

    def fits_in_memory(self, split: str) -> bool:
        """Whether ``split`` fits ``data.memory_budget_mb``."""
        return self.stored_bytes(split) <= self.cfg.memory_budget_mb * 2**20

    def load(self, split: str) -> Arrays:
        """All selected events of ``split`` in memory."""
        loaded = Arrays.concat(list(self.chunks(split)))
        if not len(loaded):
            raise DataError(f"{self.folder}: the selection leaves no {split} events")
        return loaded


class ShardStream:
    """Shuffled batches of one split streamed from its shards with tf.data.

    Per epoch the shard order is permuted by (seed, epoch); rank ``r`` of ``size``
    keeps the selected events whose running index is ``r`` modulo ``size``, shuffles
    them through a buffer of ``shuffle_buffer`` events and emits full batches; every
    rank stops after the same number of steps.
    """

    def __init__(
        self,
        view: DatasetView,
        split: str,
        batch_size: int,
        seed: int,
        shuffle_buffer: int,
        ranks: RankInfo = SINGLE_PROCESS,
    ) -> None:
        self.view = view
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        # events in the shuffle buffer, also capped in bytes: 262,144 events of 2,100
        # particle columns would be 2.2 GB
        row_bytes = 4 * len(view.manifest.columns)
        self.buffer_rows = max(batch_size, min(shuffle_buffer, SHUFFLE_BYTES // row_bytes))
        self.ranks = ranks
        total = view.count(split)
        self.events_per_epoch = total // ranks.size // batch_size * batch_size
        self.steps_per_epoch = self.events_per_epoch // batch_size
        if self.steps_per_epoch == 0:
            raise DataError(
                f"{view.folder}: {total} selected {split} events are too few for batch size "
                f"{batch_size} on {ranks.size} ranks"
            )

    def _rank_chunks(self, epoch: int) -> Iterator[Arrays]:
        n_shards = len(self.view.shard_paths(self.split))
        order = seeded_rng(self.seed, "shard_order", epoch).permutation(n_shards)
        if self.ranks.size == 1:
            yield from self.view.chunks(self.split, order)
            return
        seen = 0
        for chunk in self.view.chunks(self.split, order):
            keep = (seen + np.arange(len(chunk))) % self.ranks.size == self.ranks.rank
            seen += len(chunk)
            yield chunk.take(np.flatnonzero(keep))

    def _batches(self, epoch: int) -> Iterator[Arrays]:
        rng = seeded_rng(self.seed, "shuffle_buffer", epoch)
        parts: list[Arrays] = []
        size = emitted = 0
        for chunk in _with_end(self._rank_chunks(epoch)):
            if chunk is not None:
                parts.append(chunk)
                size += len(chunk)
                if size < self.buffer_rows:
                    continue
            if not parts:
                return
            pool = Arrays.concat(parts)
            order = rng.permutation(len(pool))
            # emit all but half a buffer, which stays to mix with the next chunks
            keep = 0 if chunk is None else self.buffer_rows // 2
            n_out = (len(pool) - keep) // self.batch_size * self.batch_size
            for start in range(0, n_out, self.batch_size):
                if emitted == self.steps_per_epoch:
                    return
                yield pool.take(order[start : start + self.batch_size])
                emitted += 1
            rest = pool.take(order[n_out:])
            parts, size = [rest], len(rest)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Arrays]:
        """The batches of ``epoch`` from step ``start_step`` on, read ahead by tf.data."""
        from fedhex_hpc._tf import tf

        probe = self.view.select(np.zeros((0, len(self.view.manifest.columns)), np.float32))
        spec = tuple(
            tf.TensorSpec((None, a.shape[1]) if a.ndim == 2 else (None,), tf.float32)
            for a in (probe.x, probe.cond, probe.weight)
            if a is not None
        )

        def generate():
            for batch in self._batches(epoch):
                yield tuple(a for a in (batch.x, batch.cond, batch.weight) if a is not None)

        dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
        for parts in dataset.skip(start_step).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            parts = list(parts)
            x = parts.pop(0)
            cond = parts.pop(0) if probe.cond is not None else None
            weight = parts.pop(0) if probe.weight is not None else None
            yield Arrays(x, cond, weight)


def _columns(indices: list[int]) -> slice | list[int]:
    """A slice when the columns are contiguous (a view, no copy), else the indices."""
    if indices == list(range(indices[0], indices[-1] + 1)):
        return slice(indices[0], indices[-1] + 1)
    return indices


def _with_end(chunks: Iterator[Arrays]) -> Iterator[Arrays | None]:
    """The chunks, then ``None`` to mark the end."""
    yield from chunks
    yield None
