"""Where this process runs: one reading of the scheduler's and the launcher's variables.

Slurm, HTCondor, mpirun, horovodrun and our own local runner each say in their
own variables which array element, rank and node-local rank a process is. This
module is the one place that knows them; the trainer, the study task runner,
the run folder's environment record and ``fedhex doctor`` all read a
:class:`JobEnvironment`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "LAUNCHER_VARIABLES",
    "MPI_RANK_VARIABLES",
    "MPI_SIZE_VARIABLES",
    "SCHEDULER_PREFIXES",
    "TASK_ID_VARIABLES",
    "JobEnvironment",
]

#: Where array schedulers put the element's index, in the order they are tried
#: (HTCondor jobs get ``FEDHEX_TASK_ID`` from the queued item, as does the local runner).
TASK_ID_VARIABLES = ("SLURM_ARRAY_TASK_ID", "FEDHEX_TASK_ID")
#: Per launcher: variables holding (rank, local rank, world size) of this process.
LAUNCHER_VARIABLES = {
    "mpirun": ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE"),
    "horovodrun": ("HOROVOD_RANK", "HOROVOD_LOCAL_RANK", "HOROVOD_SIZE"),
    "srun": ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_NUM_TASKS"),
}
#: MPI-level variables that must agree with the launcher's when present.
MPI_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMIX_RANK", "PMI_RANK")
MPI_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "HOROVOD_SIZE", "PMIX_SIZE", "PMI_SIZE")
#: Variables recorded in a run folder's environment.json.
SCHEDULER_PREFIXES = ("SLURM_", "_CONDOR", "OMPI_COMM_WORLD", "PMIX_RANK", "HOROVOD_")
#: Scheduler job identifiers written beside a running study task.
JOB_ID_PREFIXES = ("SLURM_ARRAY", "SLURM_JOB_ID", "_CONDOR_JOB", "FEDHEX_TASK_ID")


def _first_int(env: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = env.get(name, "")
        if value.isdigit():
            return int(value)
    return None


@dataclass(frozen=True)
class JobEnvironment:
    """Task id, rank, world size, local rank, launcher and scheduler of one process."""

    task_id: int | None
    rank: int
    local_rank: int
    world_size: int
    launcher: str | None
    scheduler: str
    variables: Mapping[str, str]

    @classmethod
    def current(cls, env: Mapping[str, str] | None = None) -> JobEnvironment:
        """Read ``env`` (default ``os.environ``)."""
        env = dict(os.environ if env is None else env)
        launcher = cls.launcher_of(env)
        rank = local = 0
        if launcher is not None:
            rank_var, local_var, _ = LAUNCHER_VARIABLES[launcher]
            rank = _first_int(env, (rank_var,)) or 0
            local = _first_int(env, (local_var,)) or 0
        if "SLURM_JOB_ID" in env:
            scheduler = "slurm"
        elif "_CONDOR_JOB_AD" in env or "_CONDOR_SCRATCH_DIR" in env:
            scheduler = "condor"
        elif "FEDHEX_TASK_ID" in env:
            scheduler = "local"
        else:
            scheduler = "none"
        return cls(
            task_id=_first_int(env, TASK_ID_VARIABLES),
            rank=rank,
            local_rank=local,
            world_size=cls.size_of(env),
            launcher=launcher,
            scheduler=scheduler,
            variables=env,
        )

    @staticmethod
    def launcher_of(env: Mapping[str, str]) -> str | None:
        """The launcher that started this process, judged by its variables."""
        if "OMPI_COMM_WORLD_RANK" in env:
            return "mpirun"
        if "HOROVOD_RANK" in env:
            return "horovodrun"
        if "SLURM_STEP_ID" in env:
            return "srun"
        return None

    @staticmethod
    def size_of(env: Mapping[str, str]) -> int:
        """Number of processes the MPI/Horovod launcher started (1 when not launched).

        ``SLURM_NTASKS`` alone is not used: a batch script's own shell sees it too.
        """
        size = _first_int(env, ("OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "HOROVOD_SIZE"))
        if size is not None:
            return size
        if env.get("SLURM_STEP_ID") is not None and env.get("SLURM_STEP_NUM_TASKS", "").isdigit():
            return int(env["SLURM_STEP_NUM_TASKS"])
        return 1

    def scheduler_variables(self) -> dict[str, str]:
        """The scheduler and launcher variables worth recording with a run."""
        return {k: v for k, v in self.variables.items() if k.startswith(SCHEDULER_PREFIXES)}

    def scheduler_ids(self) -> dict[str, str]:
        """Job and array ids, written beside a running task."""
        return {k: v for k, v in self.variables.items() if k.startswith(JOB_ID_PREFIXES)}
