"""The toys study folder: the resolved spec, the task blocks, flows and per-block results.

Layout::

    STUDY/study.json            kind "toys": resolved spec and the task list
    STUDY/flows/<name>/         run folders of the flows the study trains
    STUDY/results/<task>.json   one block of toys: every fit's record per toy
    STUDY/toys.csv, summary.csv, summary.md, plots/   (collect)

Task ``t`` is block ``t % blocks`` of truth point ``t // blocks``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from fedhex_hpc.config import parse_section
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.base import StudyFolder
from fedhex_hpc.studies.toys.spec import ToysSpec, load_spec

__all__ = ["FORMAT_VERSION", "ToysFolder", "plan_study"]

FORMAT_VERSION = 1


class ToysFolder(StudyFolder):
    """Paths and records of one toys study folder."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path), "toys", FORMAT_VERSION)

    def spec(self) -> ToysSpec:
        """The resolved spec the study was planned with."""
        return parse_section(ToysSpec, self.meta()["spec"], "")

    def tasks(self) -> list[dict[str, Any]]:
        """Every task: truth point index, truth value, first toy and toy count."""
        return list(self.meta()["tasks"])

    def flow_dir(self, name: str) -> Path:
        """Run folder of the study's flow ``name``."""
        return self.file("flows", name)


def plan_study(spec_path: str | Path, output: str | Path, small: bool = False) -> int:
    """Write a toys study folder for a spec; the number of tasks.

    Raises:
        ConfigError: a bad spec, or ``output`` holds a study already.
    """
    spec = load_spec(spec_path, small)
    folder = ToysFolder(output)
    if folder.has_marker():
        raise ConfigError(f"{folder.path} holds a study already; choose another -o folder")
    blocks = math.ceil(spec.toys / spec.block)
    tasks = [
        {
            "point": point,
            "truth": truth,
            "first_toy": b * spec.block,
            "toys": min(spec.block, spec.toys - b * spec.block),
        }
        for point, truth in enumerate(spec.truths)
        for b in range(blocks)
    ]
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_marker(
        {"name": spec.name, "small": small, "spec": dataclasses.asdict(spec), "tasks": tasks}
    )
    return len(tasks)
