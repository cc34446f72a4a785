"""The scan kind as the study registry sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.studies.scan.folder import FORMAT_VERSION, ScanFolder

__all__ = ["ScanKind"]


class ScanKind:
    """A profile-likelihood scan whose grid points are the tasks of a job array."""

    name = "scan"
    format_version = FORMAT_VERSION

    def folder(self, path: Path) -> ScanFolder:
        """The scan study folder ``path``."""
        return ScanFolder(path)

    def task_ids(self, path: Path) -> list[int]:
        """Every grid point."""
        return list(range(len(ScanFolder(path).points())))

    def ready(self, path: Path) -> None:
        """A planned scan can always run (its fit happened at planning)."""

    def run(self, path: Path, task_id: int, force: bool) -> dict[str, Any]:
        """Profile −2 ln L at one grid point."""
        from fedhex_hpc.studies.scan.study import run_point

        return run_point(path, task_id, force)

    def collect(self, path: Path) -> str:
        """The scan CSV, plot and intervals from every point's result."""
        from fedhex_hpc.studies.scan.study import collect

        return collect(path)

    def summary_line(self, result: dict[str, Any]) -> str:
        """``mass=171.2: -2lnL 1234.5 (valid)``."""
        point = ", ".join(f"{k}={v:.6g}" for k, v in result["point"].items())
        valid = "valid" if result["valid"] else "not converged"
        return f"{point}: -2lnL {result['minus_two_log_likelihood']:.6f} ({valid})"
