"""What every input source gives the dataset store: named columns with roles, and
partitions that can be read independently (in parallel, in bounded memory).

A partition's ``read`` must be picklable (a module-level function or a
``functools.partial`` of one) so Dask can ship it to worker processes, and it
must return a :class:`pandas.DataFrame` with exactly the source's column names,
float dtypes for features/conditions/weights and 0/1 for the ``class`` column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import pandas as pd

__all__ = ["CLASS_NAMES", "Column", "Partition", "Role", "Source"]

Role = Literal["feature", "condition", "weight", "class"]

#: Values of a ``class`` column and the names the store files them under.
CLASS_NAMES = {0: "background", 1: "signal"}


@dataclass(frozen=True)
class Column:
    """A column of a source and its role in training."""

    name: str
    role: Role
    unit: str = ""


@dataclass(frozen=True)
class Partition:
    """One independently readable piece of a source (a row range, a file, a folder)."""

    index: int
    description: str
    read: Callable[[], pd.DataFrame]
    rows: int | None = None


class Source(Protocol):
    """An input format the store can convert."""

    name: str
    columns: list[Column]

    def partitions(self) -> list[Partition]:
        """The pieces to read, in a fixed order."""
        ...

    def source_files(self) -> list[Path]:
        """Every input file, for checksums in the manifest."""
        ...
