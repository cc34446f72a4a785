"""Shard files and per-column statistics: the pieces a dataset is made of.

A shard is an HDF5 file with one float32 dataset ``data`` (rows x columns),
chunked and lzf-compressed (fast, and it shrinks the zero padding of particle
lists several times), with the column names in the ``columns`` attribute.
Files are opened read-only with HDF5 file locking off: cluster file systems
(Lustre, GPFS, NFS) often do not support the locks and reading fails otherwise.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from fedhex_hpc.errors import DataError
from fedhex_hpc.io_utils import atomic_path

__all__ = [
    "ColumnStats",
    "open_shard",
    "read_shard_rows",
    "sha256_file",
    "shard_rows",
    "write_shard",
]

CHUNK_BYTES = 1 << 20


@dataclass
class ColumnStats:
    """Count, mean, sum of squared deviations, min and max of one column; mergeable."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")

    @classmethod
    def of(cls, values: np.ndarray) -> ColumnStats:
        """Statistics of a 1-D array."""
        if len(values) == 0:
            return cls()
        values = values.astype(np.float64)
        mean = float(values.mean())
        return cls(
            len(values),
            mean,
            float(np.sum((values - mean) ** 2)),
            float(values.min()),
            float(values.max()),
        )

    def merge(self, other: ColumnStats) -> ColumnStats:
        """Statistics of the union of two disjoint samples (Chan et al.)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        return ColumnStats(
            n,
            self.mean + delta * other.count / n,
            self.m2 + other.m2 + delta**2 * self.count * other.count / n,
            min(self.min, other.min),
            max(self.max, other.max),
        )

    @property
    def std(self) -> float:
        """Population standard deviation."""
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0

    def to_dict(self) -> dict:
        """JSON form including ``std``."""
        return {**asdict(self), "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> ColumnStats:
        """Inverse of :meth:`to_dict`."""
        return cls(d["count"], d["mean"], d["m2"], d["min"], d["max"])


def write_shard(path: Path, data: np.ndarray, columns: list[str]) -> None:
    """Write ``data`` (rows x columns, cast to float32) to ``path`` atomically."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    rows_per_chunk = max(1, min(len(data), CHUNK_BYTES // (4 * max(1, data.shape[1]))))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset(
            "data",
            data=data,
            chunks=(rows_per_chunk, data.shape[1]) if len(data) else None,
            compression="lzf" if len(data) else None,
            shuffle=bool(len(data)),
        )
        fh.attrs["columns"] = np.array(columns, dtype=h5py.string_dtype())


def open_shard(path: Path) -> h5py.File:
    """Open a shard read-only without HDF5 file locking."""
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise DataError(f"shard {path} is not readable HDF5 ({exc})") from None


def shard_rows(path: Path) -> int:
    """Number of rows stored in a shard."""
    with open_shard(path) as fh:
        return int(fh["data"].shape[0])


def read_shard_rows(path: Path, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows ``start:stop`` of a shard as float32."""
    with open_shard(path) as fh:
        return fh["data"][start:stop]


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()
