"""Slurm: one job array for the tasks (``%A_%a`` logs, throttle, requeue on
preemption) and a collect job that runs after it with ``--dependency=afterok``."""

from __future__ import annotations

import shlex

from fedhex_hpc.schedulers.base import SubmitResult, Workload, call, fedhex_command, render
from fedhex_hpc.schedulers.profile import SiteProfile

__all__ = ["SlurmScheduler", "array_spec"]

MAX_RESTARTS = 3


def array_spec(task_ids: list[int], throttle: int) -> str:
    """``--array`` value: ``0-N`` for a contiguous range, else a list; ``%K`` throttle."""
    ids = sorted(task_ids)
    if ids == list(range(ids[0], ids[-1] + 1)):
        text = f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0])
    else:
        text = ",".join(map(str, ids))
    return f"{text}%{throttle}" if throttle else text


class SlurmScheduler:
    """Submits with ``sbatch --parsable``."""

    def submit(self, work: Workload, profile: SiteProfile, dry_run: bool) -> SubmitResult:
        """Write ``submit/slurm_array.sh`` and ``submit/slurm_collect.sh`` and submit both."""
        sweep = work.folder
        slurm = profile.slurm
        directives = [f"#SBATCH --partition={slurm.partition}"] if slurm.partition else []
        directives += [f"#SBATCH --account={slurm.account}"] if slurm.account else []
        directives += (
            [f"#SBATCH --gpus-per-task={slurm.gpus_per_task}"] if slurm.gpus_per_task else []
        )
        directives += [f"#SBATCH {d}" for d in slurm.extra_directives]
        fedhex = fedhex_command(profile, sweep)
        values = {
            "job_name": f"fedhex-{sweep.name}",
            "sweep": str(sweep),
            "run_args": shlex.join(work.run_args),
            "collect_args": shlex.join(work.collect_args),
            "logs": str(sweep / "logs"),
            "cpus_per_task": str(slurm.cpus_per_task),
            "memory": slurm.memory,
            "time": slurm.time,
            "directives": "\n".join(directives),
            "modules": "\n".join(f"module load {m}" for m in slurm.modules),
            "fedhex": shlex.join(fedhex),
            "max_restarts": str(MAX_RESTARTS),
        }
        (sweep / "logs").mkdir(parents=True, exist_ok=True)
        array_script = render(
            "slurm_array.sh",
            sweep / "submit" / "slurm_array.sh",
            array=array_spec(work.task_ids, slurm.array_throttle),
            **values,
        )
        collect_script = render("slurm_collect.sh", sweep / "submit" / "slurm_collect.sh", **values)
        array_cmd = ["sbatch", "--parsable", str(array_script)]
        result = SubmitResult(files=[array_script, collect_script])
        if dry_run:
            result.commands = [
                array_cmd,
                ["sbatch", "--parsable", "--dependency=afterok:<array>", str(collect_script)],
            ]
            return result
        array_id = call(array_cmd, cwd=sweep).strip().split(";")[0]
        collect_cmd = [
            "sbatch",
            "--parsable",
            f"--dependency=afterok:{array_id}",
            str(collect_script),
        ]
        collect_id = call(collect_cmd, cwd=sweep).strip().split(";")[0]
        result.job_ids = [array_id, collect_id]
        result.commands = [array_cmd, collect_cmd]
        return result
