"""Events of a mixlearn study: the dataset's genuine splits, the flows' synthetic pools,
and the seeded subsets one plan row trains, validates and tests on.

Subsets are prefixes of seeded permutations, one permutation per (model id, part),
so for one model a smaller count takes a subset of the events a larger count takes,
and different models take different subsets. Events are never picked by row order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from fedhex_hpc.data.convert import SPLITS
from fedhex_hpc.data.dataset import DatasetView
from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.errors import DataError
from fedhex_hpc.io_utils import atomic_path
from fedhex_hpc.seeding import rng
from fedhex_hpc.studies.mixlearn.plan import ClassCounts
from fedhex_hpc.studies.mixlearn.spec import CLASSES, MixlearnSpec, flow_config

__all__ = [
    "PARTS",
    "RowEvents",
    "class_counts",
    "draw_pool",
    "feature_names",
    "pool_stamp",
    "read_pool",
    "row_events",
]

_SHORT = {"signal": "sig", "background": "noi"}
_CLASS = {short: cls for cls, short in _SHORT.items()}
#: The parts of a row: (t)raining/(v)alidation x (ge)nuine/(sy)nthetic x class, as in the plan.
PARTS = [f"{s}_{src}_{_SHORT[c]}" for s in ("t", "v") for src in ("ge", "sy") for c in CLASSES]
#: The plan column holding the planned size of each genuine split and class.
_SPLIT_SIZES = {
    ("train", "signal"): "size_nf_t_sig",
    ("train", "background"): "size_nf_t_noi",
    ("val", "signal"): "size_nf_v_sig",
    ("val", "background"): "size_nf_v_noi",
    ("test", "signal"): "test_clf_sig",
    ("test", "background"): "test_clf_no",
}


def _view(spec: MixlearnSpec, cls: str) -> DatasetView:
    return DatasetView(flow_config(spec, cls).data)


def feature_names(spec: MixlearnSpec) -> list[str]:
    """The features the flows and classifiers use.

    Raises:
        DataError: The dataset has condition or weight columns (mixlearn classifies
            unweighted, unconditional events).
    """
    view = _view(spec, "signal")
    if view.conditions or view.weight:
        extra = [*view.conditions, *([view.weight] if view.weight else [])]
        raise DataError(
            f"{spec.dataset}: mixlearn needs a dataset without condition or weight columns; "
            f"it has {', '.join(extra)}"
        )
    return view.features


def class_counts(spec: MixlearnSpec) -> ClassCounts:
    """Selected events per split and class.

    Raises:
        DataError: A split lacks signal or background events.
    """
    manifest = Manifest.read(spec.dataset)

    def count(split: str, cls: str) -> int:
        if not manifest.shards_of(split, [cls]):
            return 0
        return sum(len(chunk) for chunk in _view(spec, cls).chunks(split))

    counts = {split: {cls: count(split, cls) for cls in CLASSES} for split in SPLITS}
    missing = [f"{split} {cls}" for split in SPLITS for cls in CLASSES if not counts[split][cls]]
    if missing:
        raise DataError(
            f"{spec.dataset}: mixlearn needs signal and background events in train, val and "
            f"test; there are none in {', '.join(missing)}"
        )
    return counts


def draw_pool(
    model_dir: Path, sizes: tuple[int, int], seeds: tuple[int, int], path: Path, stamp: str
) -> None:
    """Draw a flow's training and validation pools (two seeded draws) into ``path``.

    Args:
        model_dir: The flow's ``model`` folder.
        sizes: Events of the ``train`` and ``val`` pools.
        seeds: Seeds of the two draws.
        path: The HDF5 file, written atomically.
        stamp: Identifies the flow the pools come from (stored as an attribute).

    Raises:
        DataError: The flow produced NaN or Inf values.
    """
    from fedhex_hpc.flows import load_flow
    from fedhex_hpc.studies.steps.sample import draw_samples

    model = load_flow(model_dir)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        for name, n, seed in zip(("train", "val"), sizes, seeds, strict=True):
            x = draw_samples(model, n, seed=seed)
            bad = int((~np.isfinite(x).all(axis=1)).sum())
            if bad:
                raise DataError(f"{model_dir}: {bad} of {n} sampled events have NaN or Inf")
            fh.create_dataset(name, data=x)
        fh.attrs["features"] = list(model.spec.feature_names)
        fh.attrs["flow"] = stamp


def read_pool(path: Path) -> dict[str, np.ndarray]:
    """The ``train`` and ``val`` pools of one flow."""
    with h5py.File(path, "r", locking=False) as fh:
        return {name: fh[name][()] for name in ("train", "val")}


def pool_stamp(path: Path) -> str:
    """The ``flow`` attribute of a pool file ("" if it has none)."""
    with h5py.File(path, "r", locking=False) as fh:
        return str(fh.attrs.get("flow", ""))


@dataclass(frozen=True)
class RowEvents:
    """One row's events: ``parts`` (keys :data:`PARTS`) and the genuine test split."""

    parts: dict[str, np.ndarray]
    test: dict[str, np.ndarray]

    @staticmethod
    def _xy(arrays: dict[str, np.ndarray], keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([arrays[k] for k in keys])
        y = np.concatenate([np.full(len(arrays[k]), float(k.endswith("sig"))) for k in keys])
        return x, y

    def training(self) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and labels (1 = signal) of the classifier's training set."""
        return self._xy(self.parts, [k for k in PARTS if k.startswith("t_")])

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and labels of the validation set."""
        return self._xy(self.parts, [k for k in PARTS if k.startswith("v_")])

    def testing(self) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and labels of the genuine test split."""
        return self._xy(self.test, ["sig", "noi"])


def row_events(
    spec: MixlearnSpec, row: dict[str, int], pools: dict[str, dict[str, np.ndarray]]
) -> RowEvents:
    """Select the events of plan ``row`` from the dataset and the synthetic ``pools``.

    Raises:
        DataError: The dataset or a pool holds other numbers of events than planned.
    """
    genuine = {cls: {s: _view(spec, cls).load(s).x for s in SPLITS} for cls in CLASSES}
    for (split, cls), column in _SPLIT_SIZES.items():
        if len(genuine[cls][split]) != row[column]:
            raise DataError(
                f"{spec.dataset} holds {len(genuine[cls][split])} {cls} {split} events, "
                f"the plan {row[column]}: the dataset changed since the study was planned"
            )
    parts = {}
    for part, key in enumerate(PARTS):
        stage, source, short = key.split("_")
        cls, split = _CLASS[short], ("train" if stage == "t" else "val")
        events = (genuine if source == "ge" else pools)[cls][split]
        n = row[f"clf_{key}"]
        if n > len(events):
            raise DataError(f"{key}: the row needs {n} events, its source holds {len(events)}")
        order = rng(spec.seed, "mixlearn_subsets", row["model"], part).permutation(len(events))
        parts[key] = events[order[:n]]
    test = {_SHORT[cls]: genuine[cls]["test"] for cls in CLASSES}
    return RowEvents(parts, test)
