"""Sweep specs: a base config plus axes, expanded into one resolved config per task.

A spec is YAML::

    name: dim2
    base: dim2/three_in_row                    # a bundled config, or a file relative to the spec
    set: {train.max_epochs: 500}               # overrides of the base
    grid:                                      # Cartesian product
      data.target: [dim2/two_gaussians, dim2/three_in_row]
      flow.n_blocks: [1, 3, 5, 10]
    zip: {}                                    # lists of equal length, varied together
    repeats: 4                                 # run.seed = 1 .. repeats
    summary: {rows: data.target, columns: flow.n_blocks, metric: kl}
    small:                                     # replaces set/grid/zip/repeats with --small
      set: {train.max_epochs: 20}
      repeats: 1

Task order (and so task ids) is fixed by the spec: repeats vary fastest, then
zipped values, then the grid in the order the axes are written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedhex_hpc.config import (
    Config,
    config_keys,
    config_to_dict,
    load_config,
    parse_config,
    parse_section,
)
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.evaluate.catalog import METRICS
from fedhex_hpc.resources import resolve
from fedhex_hpc.studies.base import read_spec

__all__ = ["SummarySpec", "SweepSpec", "Task", "expand", "load_spec"]


@dataclass
class SummarySpec:
    """The study's summary table: mean of ``metric`` by ``rows`` x ``columns`` axes."""

    rows: str = ""
    columns: str = ""
    metric: str = "kl"


@dataclass
class SmallSpec:
    """What ``--small`` replaces to make a study run in minutes."""

    set: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    zip: dict[str, list] = field(default_factory=dict)
    repeats: int = field(default=0, metadata={"min": 0})


@dataclass
class SweepSpec:
    """A validated sweep spec (see the module docstring)."""

    name: str = "sweep"
    base: str = ""
    set: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    zip: dict[str, list] = field(default_factory=dict)
    repeats: int = field(default=1, metadata={"min": 1})
    summary: SummarySpec = field(default_factory=SummarySpec)
    small: SmallSpec = field(default_factory=SmallSpec)


@dataclass(frozen=True)
class Task:
    """One element of the plan."""

    task_id: int
    axes: dict[str, Any]
    config: Config
    key: str


def config_key(config: Config) -> str:
    """Content hash of a resolved config: what caches and output names derive from."""
    text = json.dumps(config_to_dict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_axes(spec: SweepSpec, where: str) -> None:
    valid = config_keys()
    for section, keys in (("set", spec.set), ("grid", spec.grid), ("zip", spec.zip)):
        for key in keys:
            # keys below a mapping-valued setting (data.target_params.radius) are allowed
            if key not in valid and not any(key.startswith(f"{v}.") for v in valid):
                raise ConfigError(
                    f"{where}: unknown {section} axis {key!r}; valid keys: {', '.join(valid)}"
                )
    for section, axes in (("grid", spec.grid), ("zip", spec.zip)):
        for key, values in axes.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: {section}.{key} must be a non-empty list")
    lengths = {len(v) for v in spec.zip.values()}
    if len(lengths) > 1:
        raise ConfigError(f"{where}: zip lists must have equal lengths, got {sorted(lengths)}")
    axes = [*spec.grid, *spec.zip, "run.seed"]
    for name in (spec.summary.rows, spec.summary.columns):
        if name and name not in axes:
            raise ConfigError(f"{where}: summary axis {name!r} is not an axis; axes: {axes}")
    if spec.summary.metric not in METRICS:
        raise ConfigError(f"{where}: summary.metric must be one of {', '.join(METRICS)}")


def load_spec(path: str | Path, small: bool = False) -> tuple[SweepSpec, dict]:
    """Read and validate a sweep spec (a file or a bundled name such as ``dim2``).

    Returns:
        The spec with ``--small`` applied, and the raw YAML.
    """
    path, raw = read_spec(path)
    spec = parse_section(SweepSpec, raw, "")
    if small:
        for name in ("set", "grid", "zip"):
            replacement = getattr(spec.small, name)
            if replacement:
                setattr(spec, name, {**getattr(spec, name), **replacement})
        if spec.small.repeats:
            spec.repeats = spec.small.repeats
    if spec.base:
        relative = path.parent / spec.base
        spec.base = str(relative.resolve() if relative.is_file() else resolve("config", spec.base))
    _check_axes(spec, str(path))
    return spec, raw


def _assignment(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"


def expand(spec: SweepSpec) -> list[Task]:
    """Every task of the spec with its resolved config and key."""
    base = load_config(spec.base) if spec.base else Config()
    base_raw = config_to_dict(base)
    fixed = [_assignment(k, v) for k, v in spec.set.items()]
    grid_keys = list(spec.grid)
    zipped = list(zip(*spec.zip.values(), strict=True)) if spec.zip else [()]
    tasks = []
    for grid_values in itertools.product(*spec.grid.values()):
        for zip_values in zipped:
            for seed in range(1, spec.repeats + 1):
                axes = dict(zip(grid_keys, grid_values, strict=True))
                axes.update(zip(spec.zip, zip_values, strict=True))
                axes["run.seed"] = seed
                overrides = [*fixed, *(_assignment(k, v) for k, v in axes.items())]
                config = parse_config(base_raw, overrides)
                tasks.append(Task(len(tasks), axes, config, config_key(config)))
    return tasks
