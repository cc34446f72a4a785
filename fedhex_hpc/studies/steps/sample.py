"""``fedhex sample``: draw events from a trained flow into an HDF5 file, in batches."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np

from fedhex_hpc.data.dataset import DatasetView
from fedhex_hpc.errors import DataError
from fedhex_hpc.flows import SAMPLE_BATCH, FlowModel, load_flow
from fedhex_hpc.io_utils import atomic_path
from fedhex_hpc.runs import RunDir
from fedhex_hpc.studies.steps.train import final_flow

__all__ = ["SAMPLE_BATCH", "dataset_conditions", "draw_samples", "sample_run"]


def draw_samples(
    model: FlowModel, n: int, cond: np.ndarray | None = None, seed: int = 0
) -> np.ndarray:
    """Draw ``n`` events (one per row of ``cond`` for a conditional flow), batched."""
    return model.sample_batched(n, cond, seed, SAMPLE_BATCH)


def sample_run(
    run_dir: str | Path,
    n: int,
    out: str | Path,
    cond: np.ndarray | None = None,
    seed: int = 0,
) -> Path:
    """Sample a run's final model into ``out`` (HDF5, one dataset per column)."""
    run = RunDir.open(run_dir)
    model = final_flow(run, run.config().train)
    x = draw_samples(model, n, cond, seed)
    out = Path(out)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as fh:
        for j, name in enumerate(model.spec.feature_names):
            fh.create_dataset(name, data=x[:, j])
        if cond is not None:
            cond = np.asarray(cond, dtype=np.float32).reshape(len(x), -1)
            for j, name in enumerate(model.spec.condition_names):
                fh.create_dataset(name, data=cond[:, j])
        fh.attrs["run"] = str(run.path)
        fh.attrs["seed"] = seed
    return out


def dataset_conditions(
    run_dir: str | Path, dataset: str | Path, region: str, split: str
) -> np.ndarray:
    """Condition values of a dataset's events (all classes) in ``region`` of ``split``.

    The region's bounds and column are the run's own (``data.signal_region``,
    ``data.region_column``), e.g. the signal-region mjj values CATHODE samples at.
    """
    run = RunDir.open(run_dir)
    spec = load_flow(run.model).spec
    data = replace(
        run.config().data,
        source="dataset",
        path=str(dataset),
        classes=[],
        region=region,
        conditions=list(spec.condition_names),
        features=list(spec.feature_names),
        weight="",
    )
    cond = DatasetView(data).load(split).cond
    if cond is None:
        raise DataError(f"{dataset} has no condition columns {spec.condition_names}")
    return cond
