"""The labelled events of an interpolation study: label points and events per point.

Two kinds of input:

* a conditional **target** (exact density): the label points are its training
  conditions plus any held-out masses it names; each point's training events
  and, separately, its truth events are seeded draws at that point;
* a **dataset** folder (e.g. converted from ROOT files, one file per mass point):
  the label points are the distinct rows of the label columns; a training point
  trains on its ``train`` and ``val`` events and is judged (as a control) on its
  ``test`` events, which no training saw; a held-out point is judged on all of
  its events.

Points with fewer than ``data.min_events`` events are dropped with a report line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fedhex_hpc.config import DataConfig
from fedhex_hpc.data.dataset import DatasetView
from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.errors import ConfigError, DataError, listing
from fedhex_hpc.seeding import derive_seed
from fedhex_hpc.studies.interpolation.spec import DataSpec

__all__ = ["LabelledData", "format_point", "open_data"]

_SPLITS = ("train", "val", "test")


def format_point(names: list[str], point: np.ndarray | list[float]) -> str:
    """``(m_phi=1000, m_omega=1.5)``: a label point as the errors and tables print it."""
    return "(" + ", ".join(f"{n}={float(v):g}" for n, v in zip(names, point, strict=True)) + ")"


@dataclass
class LabelledData:
    """Label points (sorted) and the events at each of them.

    Attributes:
        labels: Names of the label (condition) columns.
        features: Names of the feature columns.
        points: Label points, shape ``(m, len(labels))``, sorted lexicographically.
        counts: Events available at each point.
        dropped: Report lines of the points dropped for too few events.
        dropped_points: Those points with their event counts.
        target: The exact target, or None for a dataset.
    """

    labels: list[str]
    features: list[str]
    points: np.ndarray
    counts: list[int]
    dropped: list[str] = field(default_factory=list)
    dropped_points: list[tuple[list[float], int]] = field(default_factory=list)
    target: object | None = None
    _spec: DataSpec = field(default_factory=DataSpec)
    _seed: int = 1
    _events: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def training_events(self, index: int) -> np.ndarray:
        """The events point ``index`` contributes when it is a training point."""
        if self.target is not None:
            return self._draw(index, self._spec.n_train, "interp_train")
        parts = self._events[index]
        return np.concatenate([parts["train"], parts["val"]])

    def truth_events(self, index: int, held_out: bool) -> np.ndarray:
        """Events no training saw: all events of a held-out point, the test split of a
        training point (a target draws fresh ones either way)."""
        if self.target is not None:
            return self._draw(index, self._spec.n_truth, "interp_truth")
        parts = self._events[index]
        return np.concatenate([parts[s] for s in _SPLITS]) if held_out else parts["test"]

    def _draw(self, index: int, n: int, stream: str) -> np.ndarray:
        cond = np.repeat(self.points[index][None, :], n, axis=0)
        seed = derive_seed(self._seed, stream, index)
        return self.target.sample_given(cond, seed=seed).astype(np.float32)


def _target_data(spec: DataSpec, seed: int) -> LabelledData:
    from fedhex_hpc.targets import get_target

    target = get_target(spec.target)
    if not target.cond_dim:
        raise ConfigError(f"data.target {spec.target} is unconditional; it has no label points")
    missing = [n for n in spec.labels if n not in target.condition_names]
    if missing or (spec.labels and list(spec.labels) != target.condition_names):
        what = f"has no label column {missing[0]!r}" if missing else "needs data.labels in order"
        raise DataError(
            f"data.labels: target {spec.target} {what}; its conditions: "
            f"{', '.join(target.condition_names)}"
        )
    points = np.asarray(target.train_conditions, dtype=np.float64)
    extra = getattr(target, "heldout_masses", None)
    if extra is not None and len(extra):
        points = np.concatenate([points, np.asarray(extra, dtype=np.float64)[:, None]])
    points = np.unique(points, axis=0)
    counts = [spec.n_train] * len(points)
    return LabelledData(
        target.condition_names, target.feature_names, points, counts, [], [], target, spec, seed
    )


def _dataset_data(spec: DataSpec, seed: int) -> LabelledData:
    folder = Path(spec.dataset)
    manifest = Manifest.read(folder)
    stored = manifest.stored_columns
    labels = list(spec.labels) or manifest.names("condition")
    if not labels:
        raise DataError(f"{folder}: no condition columns to use as labels; set data.labels")
    for name in [*labels, *spec.features]:
        if name not in stored:
            role = "label" if name in labels else "feature"
            raise DataError(f"{folder}: no {role} column {name!r}; columns: {listing(stored)}")
    features = list(spec.features) or [n for n in manifest.names("feature") if n not in labels]
    cfg = replace(
        DataConfig(),
        source="dataset",
        path=str(folder),
        features=features,
        conditions=labels,
        weight="",
    )
    view = DatasetView(cfg)
    loaded = {s: view.load(s) for s in _SPLITS if manifest.shards_of(s, [])}
    every = np.concatenate([a.cond for a in loaded.values()]).astype(np.float64)
    points = np.unique(every, axis=0)
    events: dict[int, dict[str, np.ndarray]] = {}
    for i, point in enumerate(points):
        events[i] = {}
        for split in _SPLITS:
            arrays = loaded.get(split)
            if arrays is None:
                events[i][split] = np.zeros((0, len(features)), np.float32)
                continue
            mask = np.all(arrays.cond.astype(np.float64) == point, axis=1)
            events[i][split] = arrays.x[mask]
    counts = [sum(len(e) for e in events[i].values()) for i in range(len(points))]
    return LabelledData(labels, features, points, counts, [], [], None, spec, seed, events)


def open_data(spec: DataSpec, seed: int) -> LabelledData:
    """The label points and events a data spec names, points below ``min_events`` dropped.

    Raises:
        ConfigError: An unknown or unconditional target.
        DataError: A missing dataset or label column; fewer than two points left.
    """
    data = _target_data(spec, seed) if spec.target else _dataset_data(spec, seed)
    keep = [i for i, n in enumerate(data.counts) if n >= spec.min_events]
    data.dropped = [
        f"dropped point {format_point(data.labels, data.points[i])}: {data.counts[i]} events, "
        f"fewer than data.min_events {spec.min_events}"
        for i in range(len(data.points))
        if i not in keep
    ]
    data.dropped_points = [
        (data.points[i].tolist(), data.counts[i]) for i in range(len(data.points)) if i not in keep
    ]
    if len(keep) < len(data.points):
        data.points = data.points[keep]
        data.counts = [data.counts[i] for i in keep]
        data._events = {new: data._events[old] for new, old in enumerate(keep) if data._events}
    if len(data.points) < 3:
        raise DataError(
            f"{spec.target or spec.dataset}: {len(data.points)} label points with at least "
            f"data.min_events {spec.min_events} events; an interpolation study needs 3"
        )
    return data
