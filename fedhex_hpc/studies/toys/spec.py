"""Toy-study specs: truth points, toy counts, the generator, the fits and the flows to train.

A spec is YAML (paths are relative to the spec file, except model ``flow`` paths,
which are relative to the study folder, where the study trains its flows)::

    name: gauss_exp_bkg
    seed: 1
    parameter: mass                 # the parameter whose coverage is measured
    truths: [168, 171, 174, 177]    # its true values, one truth point each
    events: 1000                    # expected events per toy
    poisson: true                   # N ~ Poisson(events), else exactly events
    toys: 500                       # toys per truth point
    block: 50                       # toys per task (one job-array element)
    generate:                       # where toy events come from (exactly one of)
      target: cond/gauss_exp_bkg    #   an exact conditional target
      # flow: flows/gauss           #   a flow (a run folder in the study)
      # file: heldout.h5            #   held-out simulation, rows selected by truth_column
      # truth_column: mass_true
    flows:                          # flows the study trains: name -> fedhex train config
      gauss: infer/gauss_exp_bkg    #   (a bundled name, a file, or a mapping)
    fits:                           # model specs (see fedhex_hpc.infer.model), one per fit
      exact: {processes: {peak: {target: cond/gauss_exp_bkg, ...}}}
      flow: {processes: {peak: {flow: flows/gauss, ...}}}
    reference: exact                # per-toy differences of the other fits are to this one
    small:                          # what --small replaces
      toys: 100
      flows: {gauss: {train: {max_epochs: 3}}}   # laid over each flow's config

The generator's single condition takes the truth value (``generate.conditions``
maps several conditions to the parameter or to numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedhex_hpc.config import Config, merge_mappings, parse_config, parse_section
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.infer.model import ModelSpec
from fedhex_hpc.resources import resolve
from fedhex_hpc.studies.base import read_spec

__all__ = ["GenerateSpec", "ToysSpec", "flow_config", "load_spec"]


@dataclass
class GenerateSpec:
    """Where toy events come from: exactly one of ``target``, ``flow`` and ``file``."""

    target: str = ""
    target_params: dict[str, Any] = field(default_factory=dict)
    flow: str = ""
    file: str = ""
    key: str = ""
    truth_column: str = ""
    conditions: dict[str, Any] = field(default_factory=dict)


@dataclass
class SmallSpec:
    """What ``--small`` replaces (zero / empty: keep)."""

    toys: int = field(default=0, metadata={"min": 0})
    block: int = field(default=0, metadata={"min": 0})
    events: float = field(default=0.0, metadata={"min": 0})
    truths: list[float] = field(default_factory=list)
    flows: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToysSpec:
    """A validated toy-study spec (see the module docstring)."""

    name: str = "toys"
    seed: int = field(default=1, metadata={"min": 0})
    parameter: str = ""
    truths: list[float] = field(default_factory=list)
    events: float = field(default=1000.0, metadata={"min": 0, "exclusive": True})
    poisson: bool = True
    toys: int = field(default=500, metadata={"min": 1})
    block: int = field(default=50, metadata={"min": 1})
    generate: GenerateSpec = field(default_factory=GenerateSpec)
    flows: dict[str, Any] = field(default_factory=dict)
    fits: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    small: SmallSpec = field(default_factory=SmallSpec)


def flow_config(spec: ToysSpec, name: str) -> Config:
    """The resolved training config of the study's flow ``name``."""
    raw = spec.flows[name]
    if isinstance(raw, str):
        raw = yaml.safe_load(resolve("config", raw).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"flows.{name} must be a config name or a mapping")
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"flows.{name}: {exc.args[0]}") from None


def _check(spec: ToysSpec, where: str) -> None:
    if not spec.parameter:
        raise ConfigError(f"{where}: name the parameter whose coverage is measured (parameter)")
    if not spec.truths or len(set(spec.truths)) != len(spec.truths):
        raise ConfigError(f"{where}: truths must be a non-empty list without repeats")
    if not spec.fits:
        raise ConfigError(f"{where}: no fits")
    for name, raw in spec.fits.items():
        parse_section(ModelSpec, raw, f"fits.{name}")
    if spec.reference and spec.reference not in spec.fits:
        raise ConfigError(f"{where}: reference {spec.reference} is not one of the fits")
    sources = [s for s in ("target", "flow", "file") if getattr(spec.generate, s)]
    if len(sources) != 1:
        raise ConfigError(f"{where}: generate needs exactly one of target, flow or file")
    if spec.generate.file and not spec.generate.truth_column:
        raise ConfigError(f"{where}: generate.file needs generate.truth_column")
    for name in spec.flows:
        flow_config(spec, name)


def load_spec(path: str | Path, small: bool = False) -> ToysSpec:
    """Read and validate a toy-study spec (a file or a bundled study name).

    Args:
        path: The spec file or bundled name.
        small: Apply the spec's ``small`` variant.

    Raises:
        ConfigError: missing file, not YAML, unknown keys or bad values.
    """
    path, raw = read_spec(path)
    spec = parse_section(ToysSpec, raw, "")
    if small:
        tiny = spec.small
        for key in ("toys", "block", "events", "truths"):
            if getattr(tiny, key):
                setattr(spec, key, getattr(tiny, key))
        for name, over in tiny.flows.items():
            if name not in spec.flows:
                raise ConfigError(f"{path}: small.flows.{name} is not one of the flows")
            base = spec.flows[name]
            if isinstance(base, str):
                base = yaml.safe_load(resolve("config", base).read_text(encoding="utf-8")) or {}
            spec.flows[name] = merge_mappings(base, over)
    if spec.generate.file:
        spec.generate.file = str((path.parent / spec.generate.file).resolve())
    _check(spec, str(path))
    return spec
