"""The sweep folder: plan, per-task configs, task states and results, all on disk.

Layout::

    SWEEP/study.json          kind "sweep", spec, small flag, package and format version
    SWEEP/plan.csv            task_id, key, one column per axis
    SWEEP/tasks/ID.yaml       the fully resolved config of task ID
    SWEEP/runs/ID-KEY/        the task's run directory (named by its config hash)
    SWEEP/results/, state/, logs/   as in every study (fedhex_hpc.studies.base)
    SWEEP/results.csv, summary.*, best.json   written by collect and best
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fedhex_hpc.config import Config, config_to_dict, parse_config
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.io_utils import write_text_atomic
from fedhex_hpc.studies.base import StudyFolder
from fedhex_hpc.studies.sweep.spec import SweepSpec, Task

__all__ = ["FORMAT_VERSION", "PlanRow", "SweepFolder"]

FORMAT_VERSION = 2


@dataclass(frozen=True)
class PlanRow:
    """One row of plan.csv."""

    task_id: int
    key: str
    axes: dict[str, Any]


class SweepFolder(StudyFolder):
    """Reads and writes one sweep folder."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path), "sweep", FORMAT_VERSION)

    # --- creation -------------------------------------------------------------------
    def create(self, spec: SweepSpec, raw: dict, small: bool, tasks: list[Task]) -> None:
        """Write the plan; an existing folder must hold exactly the same plan."""
        axes = list(tasks[0].axes) if tasks else []
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["task_id", "key", *axes])
        for task in tasks:
            writer.writerow([task.task_id, task.key, *(json.dumps(task.axes[a]) for a in axes)])
        plan = buffer.getvalue()
        if self.file("plan.csv").exists():
            if self.file("plan.csv").read_text() != plan:
                raise ConfigError(
                    f"{self.path} already holds a different plan; plan into a new folder"
                )
            return
        for task in tasks:
            text = yaml.safe_dump(config_to_dict(task.config), sort_keys=False)
            write_text_atomic(self.file("tasks", f"{task.task_id}.yaml"), text)
        meta = {
            "name": spec.name,
            "small": small,
            "spec": raw,
            "summary": {
                "rows": spec.summary.rows,
                "columns": spec.summary.columns,
                "metric": spec.summary.metric,
            },
            "n_tasks": len(tasks),
        }
        write_text_atomic(self.file("plan.csv"), plan)
        self.write_marker(meta)

    # --- reading --------------------------------------------------------------------
    def plan(self) -> list[PlanRow]:
        """The rows of plan.csv."""
        self.meta()
        with open(self.file("plan.csv"), newline="") as fh:
            reader = csv.DictReader(fh)
            return [
                PlanRow(
                    int(row.pop("task_id")),
                    row.pop("key"),
                    {k: json.loads(v) for k, v in row.items()},
                )
                for row in reader
            ]

    def row(self, task_id: int) -> PlanRow:
        """The plan row of ``task_id`` (a one-line error if it is not in the plan)."""
        rows = self.plan()
        if not 0 <= task_id < len(rows):
            raise ConfigError(
                f"task id {task_id} is outside the plan of {self.path} (0-{len(rows) - 1})"
            )
        return rows[task_id]

    def config(self, task_id: int) -> Config:
        """The resolved config of a task."""
        text = self.file("tasks", f"{task_id}.yaml").read_text(encoding="utf-8")
        return parse_config(yaml.safe_load(text))

    def run_dir(self, row: PlanRow) -> Path:
        """Where the task's run lives; named by its config hash."""
        return self.file("runs", f"{row.task_id}-{row.key}")
