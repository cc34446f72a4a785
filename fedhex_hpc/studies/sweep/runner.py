"""``fedhex sweep run``: one task of a plan, from any scheduler's array element."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.evaluate.catalog import flatten_metrics
from fedhex_hpc.runs import RunDir
from fedhex_hpc.studies.base import resolve_task_id
from fedhex_hpc.studies.base import run_task as run_study_task
from fedhex_hpc.studies.sweep.folder import SweepFolder

__all__ = ["run_task"]


def run_task(
    sweep_dir: str | Path, task_id: int | None = None, force: bool = False
) -> dict[str, Any]:
    """Train and evaluate one task; write its result atomically and return it.

    A task whose result exists is not rerun unless ``force``; a task whose run
    was interrupted resumes from its last checkpoint.
    """
    sweep = SweepFolder(sweep_dir)
    task_id = resolve_task_id(task_id)
    row = sweep.row(task_id)
    run_dir = sweep.run_dir(row)

    def work() -> dict[str, Any]:
        config = sweep.config(task_id)
        # TensorFlow only now: a task id outside the plan, a done task or a broken task
        # config is reported without its start-up
        from fedhex_hpc.studies.steps import ensure_trained, evaluate_run

        ensure_trained(config, run_dir)
        metrics = evaluate_run(run_dir)
        return {
            "key": row.key,
            "run_dir": str(run_dir.relative_to(sweep.path)),
            **flatten_metrics(metrics, RunDir.open(run_dir).status()),
        }

    return run_study_task(sweep, task_id, work, force, scratch=(run_dir,))
