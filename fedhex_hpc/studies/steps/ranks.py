"""Rows split over MPI ranks (mpi4py), written as one dataset: a shard per rank.

A job launched with ``srun -n N`` or ``mpirun -np N`` runs the same command on every
rank. The rows are cut into seeded blocks whose content depends only on the block's
index; rank ``r`` makes a contiguous run of blocks and writes them as shard ``r``,
and rank 0 writes the manifest once every rank is done. Reading the shards in order
gives the rows one rank would have made, for any number of ranks. Without a
multi-rank launcher no MPI is needed (mpi4py is only imported under one).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fedhex_hpc.data.manifest import MANIFEST, Manifest
from fedhex_hpc.data.parts import write_part, write_parts_manifest
from fedhex_hpc.data.sources.base import CLASS_NAMES, Column
from fedhex_hpc.environment import JobEnvironment
from fedhex_hpc.errors import ConfigError, DataError

__all__ = ["Comm", "SingleRank", "rank_blocks", "world", "write_blocks"]


class Comm(Protocol):
    """The part of an ``mpi4py`` communicator used here."""

    rank: int
    size: int

    def gather(self, obj: Any, root: int = 0) -> list | None: ...

    def bcast(self, obj: Any, root: int = 0) -> Any: ...

    def Barrier(self) -> None: ...


class SingleRank:
    """A communicator of one process."""

    rank = 0
    size = 1

    def gather(self, obj: Any, root: int = 0) -> list:
        """``[obj]``."""
        return [obj]

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """``obj``."""
        return obj

    def Barrier(self) -> None:
        """Nothing to wait for."""


def world() -> Comm:
    """``mpi4py``'s COMM_WORLD when a launcher started several ranks, else one rank.

    Raises:
        ConfigError: several ranks were launched but mpi4py is not installed.
    """
    size = JobEnvironment.size_of(os.environ)
    if size <= 1:
        return SingleRank()
    try:
        from mpi4py import MPI
    except ImportError:
        raise ConfigError(
            f"launched as {size} ranks, but mpi4py is not installed (pip install "
            "'fedhex-hpc[hpc]'); run one process or install it"
        ) from None
    return MPI.COMM_WORLD


def rank_blocks(n_blocks: int, rank: int, size: int) -> range:
    """The contiguous run of block indices of ``rank`` among ``size`` ranks."""
    return range(n_blocks * rank // size, n_blocks * (rank + 1) // size)


def write_blocks(
    out: str | Path,
    n_blocks: int,
    make_block: Callable[[int], tuple[dict[str, np.ndarray], dict[str, int]]],
    columns: list[Column],
    source: str,
    options: dict[str, Any],
    comm: Comm | None = None,
    split: str = "train",
    cls: str | Sequence[str] = "background",
) -> Manifest:
    """Make blocks ``0 .. n_blocks-1`` on the ranks of ``comm`` and write them as a dataset.

    Args:
        out: Dataset folder to write (an existing complete one is replaced).
        n_blocks: Number of blocks.
        make_block: Block index -> (its columns by name, counts to sum into the
            manifest's ``options["counts"]``, e.g. dropped rows).
        columns: Names and roles of the columns, in stored order.
        source: The manifest's ``source``.
        options: Recorded in the manifest (with ``counts`` and ``ranks`` added).
        comm: The ranks (default :func:`world`).
        split: Where the rows are filed.
        cls: Their class, or the class of every block. Each rank writes one shard
            per class, and the manifest lists them by class, then rank: the rows of
            a class are read in block order.

    Returns:
        The manifest (on every rank).
    """
    out = Path(out)
    comm = comm or world()
    block_classes = [cls] * max(n_blocks, 1) if isinstance(cls, str) else list(cls)
    classes = [c for c in CLASS_NAMES.values() if c in block_classes]
    if comm.rank == 0:
        if (out / MANIFEST).exists():
            (out / MANIFEST).unlink()
        shutil.rmtree(out / "shards", ignore_errors=True)
    comm.Barrier()
    rows: dict[str, list[np.ndarray]] = {
        c: [np.zeros((0, len(columns)), np.float32)] for c in classes
    }
    counts: dict[str, int] = {}
    for block in rank_blocks(n_blocks, comm.rank, comm.size):
        values, block_counts = make_block(block)
        missing = [c.name for c in columns if c.name not in values]
        if missing:
            raise DataError(f"block {block} has no column {missing[0]!r}")
        stacked = np.stack([np.asarray(values[c.name], np.float32) for c in columns], axis=1)
        rows[block_classes[block]].append(stacked)
        for key, value in block_counts.items():
            counts[key] = counts.get(key, 0) + int(value)
    parts = [
        write_part(out, comm.rank, split, c, np.concatenate(rows[c]), columns) for c in classes
    ]
    gathered = comm.gather((parts, counts), root=0)
    manifest = None
    if comm.rank == 0:
        total: dict[str, int] = {}
        for _, rank_counts in gathered:
            for key, value in rank_counts.items():
                total[key] = total.get(key, 0) + value
        options = {**options, "counts": total, "ranks": comm.size}
        by_class = [
            part
            for c in classes
            for rank_parts, _ in gathered
            for part in rank_parts
            if part.cls == c
        ]
        manifest = write_parts_manifest(out, by_class, columns, source, options)
    return comm.bcast(manifest, root=0)
