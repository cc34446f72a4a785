"""Named columns of an ``.npy``/``.npz``/HDF5 file as a dataset source.

The generic route for data that is already a table: pick features, conditions,
an optional weight column, and an optional class column (1 = signal).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from fedhex_hpc.data.columns import read_columns
from fedhex_hpc.data.sources.base import Column, Partition

__all__ = ["ColumnsSource"]


def _read_rows(path: Path, key: str, names: dict[str, str], start: int, stop: int) -> pd.DataFrame:
    columns = read_columns(path, list(names), key, slice(start, stop))
    return pd.DataFrame({out: columns[name] for name, out in names.items()})


class ColumnsSource:
    """Columns of one file, read in row ranges of ``chunk_rows``."""

    name = "columns"

    def __init__(
        self,
        path: str | Path,
        features: list[str],
        conditions: list[str] = (),
        weight: str = "",
        class_column: str = "",
        key: str = "",
        chunk_rows: int = 1_000_000,
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.chunk_rows = chunk_rows
        self.columns = [Column(n, "feature") for n in features]
        self.columns += [Column(n, "condition") for n in conditions]
        if weight:
            self.columns.append(Column(weight, "weight"))
        self._names = {c.name: c.name for c in self.columns}
        if class_column:
            self.columns.append(Column("class", "class"))
            self._names[class_column] = "class"
        read_columns(self.path, list(self._names), key, slice(0, 1))  # validates names early
        self.n_rows = len(next(iter(read_columns(self.path, [features[0]], key).values())))

    def partitions(self) -> list[Partition]:
        """Row ranges of ``chunk_rows``."""
        return [
            Partition(
                i,
                f"{self.path} rows {start}-{min(start + self.chunk_rows, self.n_rows)}",
                functools.partial(
                    _read_rows,
                    self.path,
                    self.key,
                    self._names,
                    start,
                    min(start + self.chunk_rows, self.n_rows),
                ),
                min(self.chunk_rows, self.n_rows - start),
            )
            for i, start in enumerate(range(0, self.n_rows, self.chunk_rows))
        ]

    def source_files(self) -> list[Path]:
        """The one input file."""
        return [self.path]
