"""A dataset folder written in parts by independent processes (e.g. MPI ranks).

Each process writes its rows as one shard with :func:`write_part` and hands back the
:class:`Part`; one process then writes the manifest with :func:`write_parts_manifest`,
last, so the folder counts as a finished dataset only when every part is in it. The
shards and manifest are the store's usual ones (:mod:`fedhex_hpc.data.shards`,
:mod:`fedhex_hpc.data.manifest`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import fedhex_hpc
from fedhex_hpc.data.convert import SPLITS
from fedhex_hpc.data.manifest import Manifest, ShardEntry
from fedhex_hpc.data.shards import ColumnStats, sha256_file, write_shard
from fedhex_hpc.data.sources.base import CLASS_NAMES, Column

__all__ = ["Part", "write_part", "write_parts_manifest"]


@dataclass(frozen=True)
class Part:
    """One written shard (``None`` for a part without rows) and its column statistics."""

    shard: ShardEntry | None
    split: str
    stats: ColumnStats


def write_part(
    out: Path, index: int, split: str, cls: str, values: np.ndarray, columns: list[Column]
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
    names = [c.name for c in columns]
    stats = ColumnStats.of(np.asarray(values, np.float32))
    if not len(values):
        return Part(None, split, stats)
    rel = Path("shards") / split / cls / f"part-{index:05d}.h5"
    write_shard(out / rel, values, names)
    entry = ShardEntry(
        str(rel), split, cls, len(values), (out / rel).stat().st_size, sha256_file(out / rel)
    )
    return Part(entry, split, stats)


def write_parts_manifest(
    out: Path, parts: list[Part], columns: list[Column], source: str, options: dict[str, Any]
) -> Manifest:
    """Write the manifest of a dataset made of ``parts`` (in row order) and return it."""
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
        splits={
            split: {
                cls: sum(s.rows for s in shards if s.split == split and s.cls == cls)
                for cls in CLASS_NAMES.values()
            }
            for split in SPLITS
        },
        shards=shards,
        stats={split: stats.by_column(names) for split, stats in merged.items()},
        sources=[],
        options=options,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        command=sys.argv,
        package_version=fedhex_hpc.__version__,
    )
    manifest.write(out)
    return manifest
