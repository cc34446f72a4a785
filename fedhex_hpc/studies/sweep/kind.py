"""The sweep kind as the study registry sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.studies.sweep.folder import FORMAT_VERSION, SweepFolder

__all__ = ["SweepKind"]


class SweepKind:
    """One training run per task of a sweep plan."""

    name = "sweep"
    format_version = FORMAT_VERSION

    def folder(self, path: Path) -> SweepFolder:
        """The sweep folder ``path``."""
        return SweepFolder(path)

    def task_ids(self, path: Path) -> list[int]:
        """Every task of the plan."""
        return [row.task_id for row in SweepFolder(path).plan()]

    def ready(self, path: Path) -> None:
        """Sweep tasks need nothing before they start."""
        SweepFolder(path).meta()

    def run(self, path: Path, task_id: int, force: bool) -> dict[str, Any]:
        """Train and evaluate one task."""
        from fedhex_hpc.studies.sweep.runner import run_task

        return run_task(path, task_id, force)

    def collect(self, path: Path) -> str:
        """Merged table, summary and plots."""
        from fedhex_hpc.studies.sweep.collect import collect

        return collect(path) + f"\n\nmerged table: {path}/results.csv"

    def summary_line(self, result: dict[str, Any]) -> str:
        """``task N done: kl ..., test_log_likelihood ...``."""
        shown = ", ".join(
            f"{k} {result[k]:.4g}" for k in ("kl", "test_log_likelihood") if k in result
        )
        return f"task {result['task_id']} done: {shown}"
