"""Conversion on Dask workers started as Slurm jobs by dask-jobqueue (site profile)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from fedhex_hpc.data.cluster import ClusterOptions
from fedhex_hpc.data.convert import convert
from fedhex_hpc.data.inspect import verify
from fedhex_hpc.data.sources.columns import ColumnsSource

ROOT = Path(__file__).resolve().parents[1]


def test_convert_on_slurm_workers(slurm_cluster, tmp_path, monkeypatch):
    for key, value in slurm_cluster.env.items():
        if key.startswith("SLURM_CONF"):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # dask-jobqueue's worker job logs land here
    path = tmp_path / "table.h5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as fh:
        fh["a"] = rng.normal(size=4000)
        fh["b"] = rng.normal(size=4000)
    source = ColumnsSource(path, ["a", "b"], chunk_rows=1000)
    profile = ROOT / "hpc" / "profiles" / "test-cluster.yaml"
    manifest = convert(source, tmp_path / "ds", cluster=ClusterOptions(profile=str(profile)))
    assert sum(sum(c.values()) for c in manifest.splits.values()) == 4000
    assert "OK" in verify(tmp_path / "ds")
