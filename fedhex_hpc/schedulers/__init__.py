"""Schedulers behind one interface: local process pool, Slurm job arrays, HTCondor DAGs."""

from __future__ import annotations

from fedhex_hpc.schedulers.base import Scheduler, SchedulerError, SubmitResult, Workload
from fedhex_hpc.schedulers.condor import CondorScheduler
from fedhex_hpc.schedulers.local import LocalScheduler
from fedhex_hpc.schedulers.profile import SiteProfile, load_profile
from fedhex_hpc.schedulers.slurm import SlurmScheduler

__all__ = [
    "CondorScheduler",
    "LocalScheduler",
    "Scheduler",
    "SchedulerError",
    "SiteProfile",
    "SlurmScheduler",
    "SubmitResult",
    "Workload",
    "load_profile",
]
