"""``fedhex sweep run``: one task of a plan, from any scheduler's array element."""

from __future__ import annotations

import os
import shutil
import socket
import time
from typing import Any

from fedhex_hpc.errors import ConfigError, Preempted
from fedhex_hpc.io_utils import write_json_atomic
from fedhex_hpc.runs import RunDir
from fedhex_hpc.sweeps.folder import SweepFolder

__all__ = ["TASK_ID_VARIABLES", "resolve_task_id", "run_task"]

#: Where array schedulers put the element's index, in the order they are tried.
TASK_ID_VARIABLES = ("SLURM_ARRAY_TASK_ID", "FEDHEX_TASK_ID")


def resolve_task_id(task_id: int | None) -> int:
    """The explicit id, else the scheduler's array index from the environment."""
    if task_id is not None:
        return task_id
    for name in TASK_ID_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    raise ConfigError(
        "no task id: pass --task ID (or run as a Slurm array element, or set FEDHEX_TASK_ID)"
    )


def _flatten_metrics(metrics: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    flat = {
        "test_log_likelihood": metrics["test_log_likelihood"]["value"],
        "test_log_likelihood_err": metrics["test_log_likelihood"]["stderr"],
        "epochs": status.get("epochs"),
        "best_epoch": status.get("best_epoch"),
        "best_val_loss": status.get("best_val_loss"),
    }
    for name in ("kl", "classifier_auc"):
        if metrics.get(name):
            flat[name] = metrics[name]["value"]
            flat[f"{name}_err"] = metrics[name]["stderr"]
    return flat


def run_task(sweep_dir: str, task_id: int | None = None, force: bool = False) -> dict[str, Any]:
    """Train and evaluate one task; write its result atomically and return it.

    A task whose result exists is not rerun unless ``force``; a task whose run
    was interrupted resumes from its last checkpoint.
    """
    from fedhex_hpc.workflows import evaluate_run, train_run

    sweep = SweepFolder(sweep_dir)
    task_id = resolve_task_id(task_id)
    row = sweep.row(task_id)
    result_file = sweep.file("results", f"{task_id}.json")
    if result_file.exists():
        if not force:
            print(f"task {task_id} is done already (rerun with --force)")
            return sweep.result(task_id)
        result_file.unlink()
    running = sweep.file("state", f"{task_id}.running")
    failed = sweep.file("state", f"{task_id}.failed")
    failed.unlink(missing_ok=True)
    scheduler = {
        k: v for k, v in os.environ.items() if k.startswith(("SLURM_ARRAY", "SLURM_JOB_ID"))
    }
    write_json_atomic(
        running,
        {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), **scheduler},
    )
    started = time.monotonic()
    run_dir = sweep.run_dir(row)
    try:
        if force and run_dir.exists():
            shutil.rmtree(run_dir)
        has_run = (run_dir / "config.yaml").is_file()
        if not (has_run and RunDir.open(run_dir).status().get("state") == "done"):
            train_run(None if has_run else sweep.config(task_id), run_dir, resume=has_run)
        metrics = evaluate_run(run_dir)
        result = {
            "task_id": task_id,
            "key": row.key,
            "done": True,
            "run_dir": str(run_dir.relative_to(sweep.path)),
            "seconds": time.monotonic() - started,
            **_flatten_metrics(metrics, RunDir.open(run_dir).status()),
        }
        write_json_atomic(result_file, result)
        return result
    except Preempted:
        raise
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        write_json_atomic(failed, {"error": message, "time": time.time()})
        raise
    finally:
        running.unlink(missing_ok=True)
