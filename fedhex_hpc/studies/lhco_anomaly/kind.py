"""The lhco_anomaly kind as the study registry sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.studies.lhco_anomaly.folder import FORMAT_VERSION, LhcoFolder

__all__ = ["LhcoAnomalyKind"]


class LhcoAnomalyKind:
    """Weakly supervised anomaly detection on the LHC Olympics R&D layout: one task per
    (method, classifier, feature set, noise, seed, n_signal)."""

    name = "lhco_anomaly"
    format_version = FORMAT_VERSION

    def folder(self, path: Path) -> LhcoFolder:
        """The study folder ``path``."""
        return LhcoFolder(path)

    def task_ids(self, path: Path) -> list[int]:
        """Every task of the plan."""
        return list(range(len(LhcoFolder(path).tasks())))

    def ready(self, path: Path) -> None:
        """Tasks need only the plan (each builds its group's shared steps if missing)."""
        LhcoFolder(path).meta()

    def run(self, path: Path, task_id: int, force: bool) -> dict[str, Any]:
        """Run one task."""
        from fedhex_hpc.studies.lhco_anomaly.task import run_one

        return run_one(path, task_id, force)

    def collect(self, path: Path) -> str:
        """results.csv, the summary table and the figures."""
        from fedhex_hpc.studies.lhco_anomaly.collect import collect

        return collect(path)

    def summary_line(self, result: dict[str, Any]) -> str:
        """``cathode trees baseline seed 1 n_signal 1000: max SIC 4.2, AUC 0.81``."""
        return (
            f"{result['method']} {result['classifier']} {result['features']}"
            f"{' +' + str(result['noise']) + ' noise' if result['noise'] else ''} "
            f"seed {result['seed']} n_signal {result['n_signal']}: max SIC "
            f"{result['max_sic']:.2f}, AUC {result['auc']:.3f}, closure AUC "
            f"{result['closure_auc']:.3f}"
        )
