"""The Dask cluster a conversion runs on: local processes, an existing scheduler, or
Slurm workers started by dask-jobqueue from a site profile in ``hpc/``."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dask
import yaml

from fedhex_hpc.errors import ConfigError

__all__ = ["ClusterOptions", "dask_client"]


@dataclass(frozen=True)
class ClusterOptions:
    """Where Dask tasks run.

    ``scheduler`` (an address such as ``tcp://host:8786``) wins over ``profile``
    (a site profile YAML whose ``dask`` section holds SLURMCluster arguments and
    ``jobs``, the number of worker jobs), which wins over a local cluster of
    ``workers`` processes with ``threads`` threads each.
    """

    workers: int = 2
    threads: int = 1
    memory_limit: str = "2GB"
    scheduler: str = ""
    profile: str = ""


def _slurm_cluster(profile: Path):
    from dask_jobqueue import SLURMCluster

    if not profile.is_file():
        raise ConfigError(f"site profile {profile} does not exist")
    settings = yaml.safe_load(profile.read_text(encoding="utf-8")) or {}
    dask_settings = dict(settings.get("dask") or {})
    if not dask_settings:
        raise ConfigError(f"{profile} has no 'dask' section (SLURMCluster arguments)")
    jobs = int(dask_settings.pop("jobs", 1))
    cluster = SLURMCluster(**dask_settings)
    cluster.scale(jobs=jobs)
    return cluster


def _worker_environment() -> dict[str, object]:
    """Dask's environment for new worker processes without ``MALLOC_TRIM_THRESHOLD_``.

    Setting any glibc malloc threshold freezes the mmap threshold at 128 kB, so
    every array a conversion task allocates comes from fresh, zero-filled pages:
    with Dask's setting, converting LHCO partitions took 1.3x as long and
    page-faulted 3x as often as with glibc's adaptive default.
    """
    environment = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environment.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environment


def _start_method() -> str:
    """How local worker processes start: ``fork`` on Linux unless TensorFlow is loaded.

    A forked worker inherits the already imported modules and starts in about
    0.1 s instead of 1-2 s for ``spawn`` (Dask's default), which re-imports
    Python, NumPy, pandas, h5py and Dask in every worker. Forking is safe here
    because the parent holds no native thread pool the workers could need:
    conversion runs before any TensorFlow import (in ``fedhex data convert``),
    and a process that has loaded TensorFlow, whose thread pools do not survive
    a fork, gets Dask's configured method.
    """
    if sys.platform.startswith("linux") and "tensorflow" not in sys.modules:
        return "fork"
    return dask.config.get("distributed.worker.multiprocessing-method")


@contextlib.contextmanager
def dask_client(options: ClusterOptions, log_file: Path) -> Iterator:
    """A ``distributed.Client`` for ``options``; clusters it started are closed after.

    Dask's log records (a failing task's traceback, workers that die) go to
    ``log_file``, not to the terminal, from this process and from every worker.
    """
    from distributed import Client, LocalCluster

    from fedhex_hpc.data.dask_logs import WorkerLogs, logs_to_file

    with contextlib.ExitStack() as stack:
        stack.enter_context(logs_to_file(log_file))
        if options.scheduler:
            client = stack.enter_context(Client(options.scheduler))
            client.register_plugin(WorkerLogs(log_file))
            stack.callback(client.unregister_worker_plugin, WorkerLogs.name)
            yield client
            return
        if options.profile:
            cluster = _slurm_cluster(Path(options.profile))
        else:
            settings = {
                "distributed.nanny.pre-spawn-environ": _worker_environment(),
                "distributed.worker.multiprocessing-method": _start_method(),
            }
            # for the cluster's whole life: a nanny reads the start method again when
            # it restarts a worker that died, and a spawned worker would start with
            # distributed's stderr log handlers instead of the inherited log file
            stack.enter_context(dask.config.set(settings))
            stack.enter_context(warnings.catch_warnings())
            # Python >= 3.12 warns about any fork of a process with threads (here the
            # cluster's event loop); see _start_method for why this one is safe
            warnings.filterwarnings("ignore", r".*use of fork\(\) may lead to deadlocks")
            cluster = LocalCluster(
                n_workers=options.workers,
                threads_per_worker=options.threads,
                memory_limit=options.memory_limit,
                processes=True,
                dashboard_address=":0",  # any free port: 8787 may be taken on a shared node
            )
        stack.enter_context(cluster)
        client = stack.enter_context(Client(cluster))
        client.register_plugin(WorkerLogs(log_file))
        yield client
