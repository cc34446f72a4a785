"""The mixlearn kind as the study registry sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.mixlearn.folder import FORMAT_VERSION, StudyFolder
from fedhex_hpc.studies.mixlearn.spec import CLASSES

__all__ = ["MixlearnKind"]


class MixlearnKind:
    """One classifier per row of the training plan; the flows and pools come first."""

    name = "mixlearn"
    format_version = FORMAT_VERSION

    def folder(self, path: Path) -> StudyFolder:
        """The mixlearn study folder ``path``."""
        return StudyFolder(path)

    def task_ids(self, path: Path) -> list[int]:
        """Every row of the plan."""
        return list(range(len(StudyFolder(path).plan())))

    def ready(self, path: Path) -> None:
        """Rows need both synthetic pools.

        Raises:
            ConfigError: a pool is missing; names the command that makes it.
        """
        folder = StudyFolder(path)
        folder.meta()
        if not all(folder.pool_file(c).is_file() for c in CLASSES):
            raise ConfigError(f"{path}: no synthetic pools yet; run `fedhex mixlearn flows {path}`")

    def run(self, path: Path, task_id: int, force: bool) -> dict[str, Any]:
        """Train and test the classifier of one row."""
        from fedhex_hpc.studies.mixlearn.study import run_row

        return run_row(path, task_id, force)

    def collect(self, path: Path) -> str:
        """The merged plan, summary tables and heat maps."""
        from fedhex_hpc.studies.mixlearn.collect import collect

        return collect(path)

    def summary_line(self, result: dict[str, Any]) -> str:
        """``row N: accuracy ...``."""
        return f"row {result.get('row', result['task_id'])}: accuracy {result['accuracy']:.4f}"
