"""The scan study folder: the problem, the best fit, the grid and one result per point.

Layout::

    STUDY/study.json            kind "scan": the model spec, data, options, fit and grid
    STUDY/results/<task>.json   grid point ``task``: the profiled −2 ln L and its validity
    STUDY/scan.csv, scan.png, scan.pdf, scan.json   (collect)

Planning fits the model once (MIGRAD, HESSE, MINOS of a 1D scan's parameter), so
the grid follows the HESSE error as for ``fedhex infer scan`` without ``--plan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.base import StudyFolder

__all__ = ["FORMAT_VERSION", "ScanFolder", "ScanProblem"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ScanProblem:
    """What a scan fits: the model spec, the events and how to read them."""

    spec: str
    data: str
    weight: str = ""
    key: str = ""
    allow_extrapolation: bool = False

    def absolute(self) -> ScanProblem:
        """The same problem with absolute paths (tasks run from any folder)."""
        return ScanProblem(
            str(Path(self.spec).resolve()),
            str(Path(self.data).resolve()),
            self.weight,
            self.key,
            self.allow_extrapolation,
        )


class ScanFolder(StudyFolder):
    """Paths and records of one scan study folder."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path), "scan", FORMAT_VERSION)

    def problem(self) -> ScanProblem:
        """The model spec and events of the scan."""
        return ScanProblem(**self.meta()["problem"])

    def parameters(self) -> list[str]:
        """The scanned parameters (one or two)."""
        return list(self.meta()["parameters"])

    def fit(self) -> dict[str, Any]:
        """The best fit the grid was planned from."""
        return dict(self.meta()["fit"])

    def points(self) -> list[list[float]]:
        """The grid: one row of parameter values per task."""
        return [list(map(float, row)) for row in self.meta()["points"]]

    def point(self, task_id: int) -> list[float]:
        """Grid point ``task_id``.

        Raises:
            ConfigError: the id is outside the plan.
        """
        points = self.points()
        if not 0 <= task_id < len(points):
            raise ConfigError(
                f"task {task_id} is outside the plan of {self.path} (0-{len(points) - 1})"
            )
        return points[task_id]
