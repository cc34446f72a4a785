"""Shard files and per-column statistics: the pieces a dataset is made of.

A shard is an HDF5 file with one float32 dataset ``data`` (rows x columns),
chunked and compressed with Blosc (LZ4 after a byte shuffle, through the filters
of ``hdf5plugin``: about four times faster than lzf both ways here, and it
shrinks the zero padding of particle lists about four times), with the column
names in the ``columns`` attribute. Other programs read shards with h5py after
``import hdf5plugin``. Files are opened read-only with HDF5 file locking off:
cluster file systems (Lustre, GPFS, NFS) often do not support the locks and
reading fails otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from fedhex_hpc.errors import DataError
from fedhex_hpc.io_utils import atomic_path

__all__ = [
    "ColumnStats",
    "file_digest",
    "open_shard",
    "sha256_file",
    "shard_rows",
    "write_shard",
]

CHUNK_BYTES = 4 << 20
#: Blosc with LZ4 at level 1 after a byte shuffle, one thread (workers run in parallel).
COMPRESSION = hdf5plugin.Blosc(cname="lz4", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)


@dataclass
class ColumnStats:
    """Count, means, sums of squared deviations, minima and maxima of every column.

    Held as arrays (one entry per column) so that thousands of particle columns
    cost a few vector operations; two disjoint samples merge exactly (Chan et al.).
    """

    count: int
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> ColumnStats:
        """Statistics of the columns of a 2-D array."""
        n_columns = values.shape[1]
        if not len(values):
            return cls(
                0,
                np.zeros(n_columns),
                np.zeros(n_columns),
                np.full(n_columns, np.inf),
                np.full(n_columns, -np.inf),
            )
        # float64 sums; the sum of squares with float64 products (einsum), then
        # m2 = sum(x^2) - n mean^2, exact to ~1e-16 (1 + mean^2/variance) relative
        mean = values.sum(axis=0, dtype=np.float64) / len(values)
        squares = np.einsum("ij,ij->j", values, values, dtype=np.float64)
        m2 = np.maximum(squares - len(values) * mean**2, 0.0)
        return cls(
            len(values),
            mean,
            m2,
            values.min(axis=0).astype(np.float64),
            values.max(axis=0).astype(np.float64),
        )

    def merge(self, other: ColumnStats) -> ColumnStats:
        """Statistics of the union of two disjoint samples."""
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
            np.minimum(self.min, other.min),
            np.maximum(self.max, other.max),
        )

    def to_record(self) -> dict[str, Any]:
        """Compact JSON form (lists per field) for per-partition records."""
        return {
            "count": self.count,
            **{k: getattr(self, k).tolist() for k in ("mean", "m2", "min", "max")},
        }

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> ColumnStats:
        """Inverse of :meth:`to_record`."""
        return cls(
            d["count"], *(np.asarray(d[k], np.float64) for k in ("mean", "m2", "min", "max"))
        )

    def by_column(self, names: list[str]) -> dict[str, dict[str, float]]:
        """Per-column min/max/mean/std (population) for the manifest."""
        std = np.sqrt(self.m2 / self.count) if self.count else np.zeros_like(self.m2)
        return {
            name: {
                "count": self.count,
                "mean": float(self.mean[j]),
                "std": float(std[j]),
                "min": float(self.min[j]),
                "max": float(self.max[j]),
            }
            for j, name in enumerate(names)
        }


def write_shard(path: Path, data: np.ndarray, columns: list[str]) -> None:
    """Write ``data`` (rows x columns, cast to float32) to ``path`` atomically."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    rows_per_chunk = max(1, min(len(data), CHUNK_BYTES // (4 * max(1, data.shape[1]))))
    layout = {"chunks": (rows_per_chunk, data.shape[1]), **COMPRESSION} if len(data) else {}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset("data", data=data, **layout)
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


def file_digest(path: Path, new_hash: Callable[[], Any] = hashlib.sha256) -> str:
    """Hex digest of a file by a hashlib-like constructor, read in 4 MB blocks."""
    digest = new_hash()
    buffer = bytearray(1 << 22)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while size := fh.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return file_digest(path, hashlib.sha256)
