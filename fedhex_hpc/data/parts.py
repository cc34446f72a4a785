"""A dataset folder written in parts: the shard and manifest writer of in-memory rows.

Each part is one shard of a split and class written by :func:`write_part`, which
hands back the :class:`Part` (its shard entry and column statistics); once every
part is written, :func:`write_parts_manifest` writes the manifest, last, so the
folder counts as a finished dataset only when every part is in it. The parts may
come from one process (:func:`fedhex_hpc.data.convert.write_arrays`) or from
independent ones such as MPI ranks. The shards and manifest are the store's usual
ones (:mod:`fedhex_hpc.data.shards`, :mod:`fedhex_hpc.data.manifest`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import fedhex_hpc
from fedhex_hpc.data.manifest import SPLITS, Manifest, ShardEntry
from fedhex_hpc.data.shards import ColumnStats, sha256_file, write_shard
from fedhex_hpc.data.sources.base import CLASS_NAMES, Column

__all__ = ["Part", "split_counts", "write_entry", "write_part", "write_parts_manifest"]


@dataclass(frozen=True)
class Part:
    """One written shard (``None`` for a part without rows) and its column statistics."""

    shard: ShardEntry | None
    split: str
    cls: str
    stats: ColumnStats


def write_entry(
    out: Path, split: str, cls: str, index: int, rows: np.ndarray, names: list[str]
) -> ShardEntry:
    """Write ``rows`` as the shard ``index`` of ``split`` and ``cls``; its manifest entry."""
    rel = Path("shards") / split / cls / f"part-{index:05d}.h5"
    write_shard(out / rel, rows, names)
    return ShardEntry(
        str(rel), split, cls, len(rows), (out / rel).stat().st_size, sha256_file(out / rel)
    )


def split_counts(shards: list[ShardEntry], splits: Sequence[str]) -> dict[str, dict[str, int]]:
    """Rows per split and class of ``shards`` (every class, zeros included)."""
    return {
        split: {
            cls: sum(s.rows for s in shards if s.split == split and s.cls == cls)
            for cls in CLASS_NAMES.values()
        }
        for split in splits
    }


def write_part(
    out: Path, index: int, split: str, cls: str, values: np.ndarray, columns: Sequence[Column]
) -> Part:
    """Write ``values`` (rows x columns) as the shard ``index`` of ``split`` and ``cls``.

    Args:
        out: The dataset folder.
        index: Number of the part (its shard file name), unique within ``split``/``cls``.
        split: ``train``, ``val`` or ``test``.
        cls: ``background`` or ``signal``.
        values: The rows, in the order of ``columns``.
        columns: Names and roles of the columns.
    """
    values = np.asarray(values, np.float32)
    stats = ColumnStats.of(values)
    if not len(values):
        return Part(None, split, cls, stats)
    entry = write_entry(out, split, cls, index, values, [c.name for c in columns])
    return Part(entry, split, cls, stats)


def write_parts_manifest(
    out: Path,
    parts: list[Part],
    columns: Sequence[Column],
    source: str,
    options: Mapping[str, Any],
    *,
    splits: Sequence[str] = SPLITS,
    sources: Sequence[Mapping[str, Any]] = (),
) -> Manifest:
    """Write the manifest of a dataset made of ``parts`` (in row order) and return it.

    Args:
        out: The dataset folder.
        parts: Every written part, in the order its shards are to be read.
        columns: Names and roles of the columns.
        source: What the rows came from (the manifest's ``source``).
        options: How they were made (the manifest's ``options``).
        splits: The splits the manifest counts rows of.
        sources: Input file records (path, bytes, checksum).
    """
    shards = [p.shard for p in parts if p.shard is not None]
    names = [c.name for c in columns]
    merged: dict[str, ColumnStats] = {}
    for part in parts:
        merged[part.split] = (
            merged[part.split].merge(part.stats) if part.split in merged else part.stats
        )
    manifest = Manifest(
        source=source,
        columns=[asdict(c) for c in columns],
        splits=split_counts(shards, splits),
        shards=shards,
        stats={split: stats.by_column(names) for split, stats in merged.items()},
        sources=[dict(s) for s in sources],
        options=dict(options),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        command=sys.argv,
        package_version=fedhex_hpc.__version__,
    )
    manifest.write(out)
    return manifest
