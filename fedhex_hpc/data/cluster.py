"""The Dask cluster a conversion runs on: local processes, an existing scheduler, or
Slurm workers started by dask-jobqueue from a site profile in ``hpc/``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


@contextlib.contextmanager
def dask_client(options: ClusterOptions) -> Iterator:
    """A ``distributed.Client`` for ``options``; clusters it started are closed after."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    if options.scheduler:
        with Client(options.scheduler) as client:
            yield client
        return
    if options.profile:
        cluster = _slurm_cluster(Path(options.profile))
    else:
        cluster = LocalCluster(
            n_workers=options.workers,
            threads_per_worker=options.threads,
            memory_limit=options.memory_limit,
            processes=True,
            dashboard_address=":0",  # any free port: 8787 may be taken on a shared node
        )
    with cluster, Client(cluster) as client:
        yield client
