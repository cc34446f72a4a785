"""The interpolation kind as the study registry sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.studies.interpolation.folder import FORMAT_VERSION, InterpolationFolder

__all__ = ["InterpolationKind"]


class InterpolationKind:
    """One conditional flow per fold, judged at its held-out and control points."""

    name = "interpolation"
    format_version = FORMAT_VERSION

    def folder(self, path: Path) -> InterpolationFolder:
        """The interpolation study folder ``path``."""
        return InterpolationFolder(path)

    def task_ids(self, path: Path) -> list[int]:
        """One task per fold."""
        return list(range(len(InterpolationFolder(path).folds())))

    def ready(self, path: Path) -> None:
        """Folds need nothing before they start (the plan checked the data)."""
        InterpolationFolder(path).meta()

    def run(self, path: Path, task_id: int, force: bool) -> dict[str, Any]:
        """Train and judge one fold."""
        from fedhex_hpc.studies.interpolation.study import run_fold

        return run_fold(path, task_id, force)

    def collect(self, path: Path) -> str:
        """Per-point table, summary and plots."""
        from fedhex_hpc.studies.interpolation.collect import collect

        return collect(path)

    def summary_line(self, result: dict[str, Any]) -> str:
        """``fold N: k of m held-out points meet the goal``."""
        held = [p for p in result["points"] if p["role"] == "heldout"]
        met = sum(p["methods"]["flow"]["verdict"] == "met" for p in held)
        return f"fold {result['fold']}: {met} of {len(held)} held-out points meet the goal (flow)"
