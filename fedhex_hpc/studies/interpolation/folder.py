"""The interpolation study folder.

Layout::

    STUDY/study.json              kind "interpolation": spec, label points, folds, dropped points
    STUDY/folds/F/training.h5     fold F's training events (features, labels, weight)
    STUDY/folds/F/run/            fold F's flow (a run directory)
    STUDY/results/F.json          fold F's judged points (fedhex_hpc.studies.base)
    STUDY/points.csv, points.md, summary.md, plots/   (collect)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.config import parse_section
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.base import StudyFolder
from fedhex_hpc.studies.interpolation.spec import InterpolationSpec

__all__ = ["FORMAT_VERSION", "InterpolationFolder"]

FORMAT_VERSION = 1


class InterpolationFolder(StudyFolder):
    """Paths and records of one interpolation study folder."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path), "interpolation", FORMAT_VERSION)

    def spec(self) -> InterpolationSpec:
        """The resolved spec the study was planned with."""
        return parse_section(InterpolationSpec, self.meta()["spec"], "")

    def folds(self) -> list[dict[str, Any]]:
        """The planned folds (held-out, training and control point indices)."""
        return self.meta()["folds"]

    def fold(self, fold: int) -> dict[str, Any]:
        """Fold ``fold`` (a one-line error outside the plan)."""
        folds = self.folds()
        if not 0 <= fold < len(folds):
            raise ConfigError(
                f"task id {fold} is outside the plan of {self.path} (0-{len(folds) - 1})"
            )
        return folds[fold]

    def fold_dir(self, fold: int) -> Path:
        """Fold ``fold``'s folder (training file and run)."""
        return self.file("folds", str(fold))
