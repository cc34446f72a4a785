"""Data: known-target samples, named columns of files, and converted dataset folders."""

from __future__ import annotations

from fedhex_hpc.data.arrays import Arrays, Splits, check_finite, load_splits
from fedhex_hpc.data.columns import read_columns

__all__ = ["Arrays", "Splits", "check_finite", "load_splits", "read_columns"]
