"""Run a sweep's tasks on this machine: a process pool with bounded concurrency.

Every task is its own ``fedhex sweep run`` process (TensorFlow is not fork-safe,
and memory is returned when a task ends); then the results are collected.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from fedhex_hpc.schedulers.base import SubmitResult, Workload
from fedhex_hpc.schedulers.profile import SiteProfile

__all__ = ["LocalScheduler"]


class LocalScheduler:
    """``jobs`` tasks at a time, each with ``threads`` TensorFlow threads."""

    def __init__(self, jobs: int = 2, threads: int = 1) -> None:
        self.jobs = jobs
        self.threads = threads

    def submit(self, work: Workload, profile: SiteProfile, dry_run: bool) -> SubmitResult:
        """Run the tasks (logs in ``logs/local_<id>.out``), then collect."""
        fedhex = [sys.executable, "-m", "fedhex_hpc.cli"]
        commands = [[*fedhex, *work.run_args] for _ in work.task_ids]
        collect = [*fedhex, *work.collect_args]
        result = SubmitResult(commands=[*commands, collect])
        if dry_run:
            return result
        logs = work.folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # TensorFlow reads its thread-pool sizes from these at start-up
        env = {
            **os.environ,
            "TF_NUM_INTRAOP_THREADS": str(self.threads),
            "TF_NUM_INTEROP_THREADS": str(self.threads),
        }

        def run(item: tuple[int, list[str]]) -> int:
            task_id, argv = item
            with open(logs / f"local_{task_id}.out", "a") as log:
                return subprocess.run(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**env, "FEDHEX_TASK_ID": str(task_id)},
                ).returncode

        with ThreadPoolExecutor(self.jobs) as pool:
            codes = list(pool.map(run, zip(work.task_ids, commands, strict=True)))
        result.job_ids = [f"local:{i}:{code}" for i, code in zip(work.task_ids, codes, strict=True)]
        subprocess.run(collect, check=False)
        return result
