"""The mixlearn study folder: spec, plan, flows, synthetic pools and per-row results on disk.

Layout::

    STUDY/study.json           kind "mixlearn": resolved spec, dataset counts, pool sizes, versions
    STUDY/training.plan.csv    the plan (see fedhex_hpc.studies.mixlearn.plan); collect fills it in
    STUDY/flows/<class>/       run directory of the signal / background MAF
    STUDY/pools/<class>.h5     synthetic events: datasets ``train`` and ``val``
    STUDY/results/<row>.json   one classifier's counts and metrics (fedhex_hpc.studies.base)
    STUDY/summary.csv, summary.md, plots/accuracy.png, plots/loss.png   (collect)

Every stage writes only its own files, atomically, so rows can run concurrently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fedhex_hpc.config import parse_section
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.base import StudyFolder as BaseFolder
from fedhex_hpc.studies.mixlearn.plan import COUNT_COLUMNS, PLAN_COLUMNS
from fedhex_hpc.studies.mixlearn.spec import MixlearnSpec

__all__ = ["FORMAT_VERSION", "StudyFolder"]

FORMAT_VERSION = 2


class StudyFolder(BaseFolder):
    """Paths and records of one mixlearn study folder."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path), "mixlearn", FORMAT_VERSION)

    @property
    def plan_file(self) -> Path:
        """``training.plan.csv``."""
        return self.file("training.plan.csv")

    def flow_dir(self, cls: str) -> Path:
        """Run directory of the flow of class ``cls``."""
        return self.file("flows", cls)

    def pool_file(self, cls: str) -> Path:
        """Synthetic events of the flow of class ``cls``."""
        return self.file("pools", f"{cls}.h5")

    def spec(self) -> MixlearnSpec:
        """The resolved spec the study was planned with."""
        return parse_section(MixlearnSpec, self.meta()["spec"], "")

    def plan(self) -> pd.DataFrame:
        """``training.plan.csv``, one row per classifier in row-index order."""
        self.meta()
        table = pd.read_csv(self.plan_file)
        if list(table.columns) != PLAN_COLUMNS:
            raise ConfigError(f"{self.plan_file} does not have the mixlearn plan columns")
        return table

    def row(self, index: int) -> dict[str, Any]:
        """The planned counts of row ``index`` (a one-line error outside the plan)."""
        table = self.plan()
        if not 0 <= index < len(table):
            raise ConfigError(
                f"row {index} is outside the plan of {self.path} (0-{len(table) - 1})"
            )
        return {k: int(v) for k, v in table.iloc[index].items() if k in COUNT_COLUMNS}
