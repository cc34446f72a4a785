"""Interpolation study specs: labelled data, which label points train, the flow, the judge.

A spec is YAML (every key has a default; paths are relative to the spec file)::

    name: interp-grid
    seed: 1
    data:
      target: cond/grid          # a conditional target (exact truth) ...
      dataset: ""                # ... or a dataset folder whose conditions are the labels
      labels: []                 # label columns (default: the target's / dataset's conditions)
      features: []               # dataset features (default: the manifest's)
      n_train: 1000              # target: training events per training point
      n_truth: 20000             # target: truth events per judged point
      min_events: 100            # points with fewer events are dropped (a report line)
    split:
      mode: every                # list | every | leave_one_out
      points: []                 # list: the held-out points; leave_one_out: which to leave out
      every: 3                   # every: hold out points offset, offset + every, ... (sorted)
      offset: 1
      controls: 4                # training points judged as a control (spread evenly)
    equalise_weights: false      # per-event weights giving every training point equal weight
    flow:
      base: cond/interp          # a bundled config or a file relative to the spec
      set: {train.max_epochs: 300}
    judge:
      n_generated: 20000         # flow events per judged point
      bins: 40
      auc_events: 4000
      auc_permutations: 19
      bootstrap: 100
      goal: 0.01                 # the "1 %" goal on |dmean|/sigma and |dsigma|/sigma
    small:                       # what --small replaces, section by section
      data: {n_train: 300}
      flow: {set: {train.max_epochs: 20}}

The study sets ``run.name``, ``run.seed`` and every ``data`` key of the flow
config itself (the flow trains on a file of the training points' events).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fedhex_hpc.config import Config, config_to_dict, load_config, parse_config, parse_section
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.resources import resolve
from fedhex_hpc.studies.base import read_spec

__all__ = [
    "DataSpec",
    "FlowSpec",
    "InterpolationSpec",
    "JudgeSpec",
    "SplitSpec",
    "flow_config",
    "load_spec",
    "spec_record",
]

#: Top-level sections ``small`` may replace (key by key inside each).
_SECTIONS = ("data", "split", "flow", "judge")


@dataclass
class DataSpec:
    """Where the labelled events come from."""

    target: str = ""
    dataset: str = ""
    labels: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    n_train: int = field(default=1000, metadata={"min": 10})
    n_truth: int = field(default=20_000, metadata={"min": 10})
    min_events: int = field(default=100, metadata={"min": 10})


@dataclass
class SplitSpec:
    """Which label points train and which are held out."""

    mode: Literal["list", "every", "leave_one_out"] = "every"
    points: list[list[float]] = field(default_factory=list)
    every: int = field(default=3, metadata={"min": 2})
    offset: int = field(default=1, metadata={"min": 0})
    controls: int = field(default=4, metadata={"min": 0})


@dataclass
class FlowSpec:
    """The flow's training config: a base config plus overrides."""

    base: str = "cond/interp"
    set: dict[str, Any] = field(default_factory=dict)


@dataclass
class JudgeSpec:
    """How each judged point is compared with its truth sample."""

    n_generated: int = field(default=20_000, metadata={"min": 100})
    bins: int = field(default=40, metadata={"min": 2})
    auc_events: int = field(default=4000, metadata={"min": 40})
    auc_permutations: int = field(default=19, metadata={"min": 1})
    bootstrap: int = field(default=100, metadata={"min": 10})
    goal: float = field(default=0.01, metadata={"min": 0, "exclusive": True})


@dataclass
class InterpolationSpec:
    """A validated interpolation spec (see the module docstring)."""

    name: str = "interpolation"
    seed: int = field(default=1, metadata={"min": 0})
    data: DataSpec = field(default_factory=DataSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    equalise_weights: bool = False
    flow: FlowSpec = field(default_factory=FlowSpec)
    judge: JudgeSpec = field(default_factory=JudgeSpec)
    small: dict[str, Any] = field(default_factory=dict)


def flow_config(
    spec: InterpolationSpec,
    training_file: Path,
    fold: int,
    columns: tuple[list[str], list[str], bool] = (["x"], [], False),
) -> Config:
    """The resolved training config of fold ``fold``'s flow, trained on ``training_file``.

    Args:
        spec: The study spec.
        training_file: The HDF5 file of the fold's training events.
        fold: The fold (task) id.
        columns: Feature names, label names and whether the file has a ``weight``.

    Raises:
        ConfigError: A bad base config or override (prefixed with ``flow``), or an
            override of a key the study sets.
    """
    try:
        base = config_to_dict(load_config(spec.flow.base))
    except ConfigError as exc:
        raise ConfigError(f"flow.base: {exc.args[0]}") from None
    for key in spec.flow.set:
        if key.startswith("data.") or key in ("run.name", "run.seed"):
            raise ConfigError(f"flow.set.{key} is set by the interpolation study; remove it")
    base["run"].update(name=f"{spec.name}-fold{fold}", seed=spec.seed)
    base["data"] = {
        **base["data"],
        "source": "file",
        "path": str(training_file),
        "features": list(columns[0]),
        "conditions": list(columns[1]),
        "weight": "weight" if columns[2] else "",
        "test_fraction": 0.01,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in spec.flow.set.items()]
    try:
        return parse_config(base, overrides)
    except ConfigError as exc:
        raise ConfigError(f"flow: {exc.args[0]}") from None


def _apply_small(raw: dict, small: dict, where: str) -> dict:
    unknown = [k for k in small if k not in _SECTIONS]
    if unknown:
        raise ConfigError(
            f"{where}: small.{unknown[0]} cannot be replaced; small takes {', '.join(_SECTIONS)}"
        )
    out = dict(raw)
    for section, values in small.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: small.{section} must be a mapping")
        merged = {**(raw.get(section) or {}), **values}
        if section == "flow" and "set" in values:
            merged["set"] = {**((raw.get("flow") or {}).get("set") or {}), **values["set"]}
        out[section] = merged
    return out


def _check(spec: InterpolationSpec, where: str) -> None:
    data = spec.data
    if bool(data.target) == bool(data.dataset):
        raise ConfigError(f"{where}: set exactly one of data.target and data.dataset")
    if spec.split.mode == "list" and not spec.split.points:
        raise ConfigError(f"{where}: split.mode list needs split.points (the held-out points)")
    if spec.split.mode == "every" and spec.split.offset >= spec.split.every:
        raise ConfigError(f"{where}: split.offset must be below split.every ({spec.split.every})")


def load_spec(
    path: str | Path, small: bool = False, dataset: str | Path | None = None
) -> InterpolationSpec:
    """Read and validate an interpolation spec (a file or a bundled name).

    Args:
        path: The spec file, or a bundled study name such as ``interp_grid``.
        small: Apply the spec's ``small`` variant.
        dataset: A dataset folder replacing the spec's ``data.dataset``.

    Returns:
        The spec with ``small`` applied and paths made absolute.

    Raises:
        ConfigError: Not YAML, an unknown key (the error lists the valid ones), a
            value out of range, or a spec naming no data or both kinds of data.
    """
    path, raw = read_spec(path)
    spec = parse_section(InterpolationSpec, raw, "")
    if small:
        spec = parse_section(InterpolationSpec, _apply_small(raw, spec.small, str(path)), "")
    if dataset is not None:
        spec.data.dataset = str(Path(dataset).resolve())
    elif spec.data.dataset:
        spec.data.dataset = str((path.parent / spec.data.dataset).resolve())
    relative = path.parent / spec.flow.base
    spec.flow.base = str(
        relative.resolve() if relative.is_file() else resolve("config", spec.flow.base)
    )
    _check(spec, str(path))
    flow_config(spec, Path("training.h5"), 0)  # validates the flow section
    return spec


def spec_record(spec: InterpolationSpec) -> dict[str, Any]:
    """The spec as a plain mapping (what ``study.json`` stores)."""
    return dataclasses.asdict(spec)
