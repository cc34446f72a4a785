"""Run directories: the folder that holds everything one training run produced."""

from __future__ import annotations

from fedhex_hpc.runs.rundir import RunDir

__all__ = ["RunDir"]
