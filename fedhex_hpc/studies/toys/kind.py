"""The toys kind as the study registry sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.runs import RunDir
from fedhex_hpc.studies.toys.folder import FORMAT_VERSION, ToysFolder

__all__ = ["ToysKind"]


class ToysKind:
    """Blocks of seeded pseudo-experiments per truth point, each fitted by every model."""

    name = "toys"
    format_version = FORMAT_VERSION

    def folder(self, path: Path) -> ToysFolder:
        """The toys study folder ``path``."""
        return ToysFolder(path)

    def task_ids(self, path: Path) -> list[int]:
        """Every block of the plan."""
        return list(range(len(ToysFolder(path).tasks())))

    def ready(self, path: Path) -> None:
        """Blocks need the study's flows trained.

        Raises:
            ConfigError: a flow is not trained; names the command that trains it.
        """
        folder = ToysFolder(path)
        for name in folder.spec().flows:
            run = folder.flow_dir(name)
            if (
                not (run / "config.yaml").is_file()
                or RunDir.open(run).status().get("state") != "done"
            ):
                raise ConfigError(
                    f"{path}: flow {name} is not trained yet; run `fedhex infer toys flows {path}`"
                )

    def run(self, path: Path, task_id: int, force: bool) -> dict[str, Any]:
        """Draw and fit one block of toys."""
        from fedhex_hpc.studies.toys.study import run_block

        return run_block(path, task_id, force)

    def collect(self, path: Path) -> str:
        """Bias, pulls and coverage per fit and truth point; tables and plots."""
        from fedhex_hpc.studies.toys.collect import collect

        return collect(path)

    def summary_line(self, result: dict[str, Any]) -> str:
        """``truth 171: 50 toys, fits exact, flow``."""
        fits = ", ".join(result["fits"])
        return f"truth {result['truth']:g}: {len(result['toys'])} toys, fits {fits}"
