"""The steps a (seed, n_signal) group shares, each built once and keyed by what it is made of.

Every step's folder is ``<shared>/<step>-<key>`` (``STUDY/shared`` unless the spec's
``shared_dir`` names another folder, which studies on the same inputs can share) where
``key`` hashes the step's full resolved inputs (the prepare settings and input files' identities; a
flow's whole training config, which names the prepared data's folder; the
template's settings and its flow), so a changed setting makes a new folder and a
stale result is never reused. Concurrent tasks of one group take an exclusive
file lock per step: the first builds it, the others wait and then reuse it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from fedhex_hpc.config import Config, config_to_dict
from fedhex_hpc.data.sources.lhco import feature_names
from fedhex_hpc.data.weak_supervision import Prepared, prepare
from fedhex_hpc.io_utils import atomic_path, write_json_atomic
from fedhex_hpc.seeding import derive_seed
from fedhex_hpc.studies.lhco_anomaly.folder import LhcoFolder
from fedhex_hpc.studies.lhco_anomaly.spec import flow_config, prepare_config

__all__ = ["TEMPLATE_PARTS", "GroupSteps", "step_seconds"]

#: Shares of the template samples: classifier training, its validation, and the
#: held-out part the closure test compares with the true SR background.
TEMPLATE_PARTS = {"train": 0.5, "val": 0.25, "holdout": 0.25}


def _key(record: dict[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder``'s step (``folder.lock`` beside it)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _record_time(folder: Path, seconds: float) -> None:
    write_json_atomic(folder / "step.json", {"seconds": seconds, "finished": time.time()})


def step_seconds(folder: Path) -> float:
    """How long a shared step took when it was built (0 if unknown)."""
    path = folder / "step.json"
    return float(json.loads(path.read_text())["seconds"]) if path.is_file() else 0.0


class GroupSteps:
    """The shared steps of group ``index`` of a study: prepare, flows and template."""

    def __init__(self, folder: LhcoFolder, index: int) -> None:
        self.folder = folder
        self.spec = folder.spec()
        group = folder.groups()[index]
        self.seed, self.n_signal = int(group["seed"]), int(group["n_signal"])

    # --- data -----------------------------------------------------------------------
    def prepared_dir(self) -> Path:
        """The group's prepared-data folder."""
        features, extra = self.folder.inputs()
        cfg = prepare_config(self.spec, self.seed, self.n_signal)
        record = {"config": asdict(cfg), "inputs": [_identity(features), _identity(extra)]}
        return self.folder.shared() / f"prepare-{_key(record)}"

    def prepared(self) -> Prepared:
        """The group's weak-supervision splits, prepared unless they are there."""
        out = self.prepared_dir()
        with _locked(out):
            started = time.monotonic()
            fresh = not (out / "prepare.json").is_file()
            features, extra = self.folder.inputs()
            result = prepare(
                features, extra, out, prepare_config(self.spec, self.seed, self.n_signal)
            )
            if fresh:
                _record_time(out, time.monotonic() - started)
        return result

    # --- flows ----------------------------------------------------------------------
    def flow_config(self, which: str, feature_set: str) -> Config:
        """The resolved config of the ``outer`` (SB) or ``inner`` (SR) flow."""
        step = self.spec.outer_flow if which == "outer" else self.spec.inner_flow
        split = "sb" if which == "outer" else "sr"
        dataset = self.prepared_dir() / split
        seed = derive_seed(self.seed, "lhco_flow", 0 if which == "outer" else 1)
        return flow_config(step, list(feature_names(feature_set)), dataset, seed % 2**31)

    def flow_dir(self, which: str, feature_set: str) -> Path:
        """The run folder of a flow, keyed by its whole resolved config."""
        config = config_to_dict(self.flow_config(which, feature_set))
        return self.folder.shared() / f"{which}-{_key(config)}"

    def flow(self, which: str, feature_set: str) -> Path:
        """The trained run folder of a flow: trained, or resumed, unless it is done."""
        from fedhex_hpc.studies.steps import ensure_trained  # TensorFlow: only when training

        self.prepared()
        run_dir = self.flow_dir(which, feature_set)
        with _locked(run_dir):
            started = time.monotonic()
            fresh = not (run_dir / "step.json").is_file()
            ensure_trained(self.flow_config(which, feature_set), run_dir)
            if fresh:
                _record_time(run_dir, time.monotonic() - started)
        return run_dir

    # --- template -------------------------------------------------------------------
    def template_dir(self, feature_set: str) -> Path:
        """The folder of the CATHODE template sampled from the outer flow."""
        record = {
            "flow": self.flow_dir("outer", feature_set).name,
            "template": asdict(self.spec.template),
            "parts": TEMPLATE_PARTS,
            "seed": self.seed,
        }
        return self.folder.shared() / f"template-{_key(record)}"

    def template(self, feature_set: str) -> dict[str, dict[str, np.ndarray]]:
        """Template events per part of :data:`TEMPLATE_PARTS` (features and mjj)."""
        out = self.template_dir(feature_set)
        with _locked(out):
            if not (out / "template.npz").is_file():
                self._sample_template(feature_set, out)
        with np.load(out / "template.npz") as stored:
            columns = {name: stored[name] for name in stored.files}
        part = columns.pop("part")
        return {
            name: {column: values[part == i] for column, values in columns.items()}
            for i, name in enumerate(TEMPLATE_PARTS)
        }

    def _sample_template(self, feature_set: str, out: Path) -> None:
        from fedhex_hpc.studies.steps.template import fit_mjj_kde, sample_template

        run_dir = self.flow("outer", feature_set)
        started = time.monotonic()  # the flow's own time is recorded with the flow
        sr_mjj = self.prepared().columns("sr", "train", ["mjj"])["mjj"]
        kde = fit_mjj_kde(sr_mjj, self.spec.template.bandwidth)
        seed = derive_seed(self.seed, "lhco_template")
        events = sample_template(run_dir, kde, self.spec.template.n_samples, seed)
        n = len(events["mjj"])
        rng = np.random.default_rng(derive_seed(self.seed, "lhco_template", 1))
        shares = np.cumsum(list(TEMPLATE_PARTS.values()))
        part = np.searchsorted(shares * n, np.arange(n), side="right")
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "template.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, part=rng.permutation(part).astype(np.int8), **events)
        _record_time(out, time.monotonic() - started)
