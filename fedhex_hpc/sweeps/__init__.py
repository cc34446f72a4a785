"""Sweeps: spec -> plan of resolved configs, one task per array element, collect."""

from __future__ import annotations

from fedhex_hpc.sweeps.collect import collect, status, task_ids_by_state
from fedhex_hpc.sweeps.folder import SweepFolder
from fedhex_hpc.sweeps.runner import resolve_task_id, run_task
from fedhex_hpc.sweeps.spec import SweepSpec, Task, expand, load_spec

__all__ = [
    "SweepFolder",
    "SweepSpec",
    "Task",
    "collect",
    "expand",
    "load_spec",
    "resolve_task_id",
    "run_task",
    "status",
    "task_ids_by_state",
]
