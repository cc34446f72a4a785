"""The sweep study kind: a base config plus axes, one training run per task, a summary."""

from __future__ import annotations

from fedhex_hpc.studies.sweep.collect import best, collect, status, task_ids_by_state
from fedhex_hpc.studies.sweep.folder import SweepFolder
from fedhex_hpc.studies.sweep.runner import run_task
from fedhex_hpc.studies.sweep.spec import SweepSpec, Task, expand, load_spec

__all__ = [
    "SweepFolder",
    "SweepSpec",
    "Task",
    "best",
    "collect",
    "expand",
    "load_spec",
    "run_task",
    "status",
    "task_ids_by_state",
]
