"""LHC Olympics anomaly-detection study specs: the axes, the inputs and each step's settings.

A spec is YAML (input paths are relative to the spec file)::

    name: lhco_anomaly
    inputs:                          # the R&D features file and the extra SR background;
      features: ""                   #   both empty: SYNTHETIC files in those layouts are
      extra: ""                      #   written into the study folder at plan time
      synthetic_events: 400000
    prepare: {signal_region: [3.3, 3.7]}     # PrepareConfig keys (n_signal, seed: the axes)
    methods: [cathode, anode, idealized, supervised, cwola]
    classifiers: [trees, neural]     # ANODE scores with its flows and takes none
    feature_sets: [baseline]         # baseline | extended (adds tau32 of each jet)
    noise: [0]                       # Gaussian-noise inputs added to the classifiers
    seeds: [1, 2, 3, 4, 5]
    n_signal: [0, 300, 500, 750, 1000, 1500]
    reference_n_signal: 1000         # the injection whose curves collect draws
    outer_flow: {config: lhco/cathode, set: {}}      # SB flow: a config + nested overrides
    inner_flow: {config: lhco/anode_inner, set: {}}  # ANODE's SR flow
    template: {n_samples: 400000, bandwidth: 0.01}
    neural: {}                       # NeuralEnsembleConfig keys
    trees: {}                        # TreeEnsembleConfig keys
    evaluation: {fpr_min: 1.84e-5, min_background: 25}
    shared_dir: ""                   # where group steps live [STUDY/shared]; studies on the
                                     #   same input files may share one (relative to STUDY)
    small: {...}                     # laid over the whole spec by --small

Every (method, classifier, feature set, noise, seed, n_signal) is one task; ANODE
has one task per (feature set, seed, n_signal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedhex_hpc.classifiers import CLASSIFIER_KINDS, NeuralEnsembleConfig, TreeEnsembleConfig
from fedhex_hpc.config import Config, merge_mappings, parse_config, parse_section
from fedhex_hpc.data.sources.lhco import FEATURE_SETS
from fedhex_hpc.data.weak_supervision import PrepareConfig
from fedhex_hpc.errors import ConfigError, suggest
from fedhex_hpc.resources import resolve
from fedhex_hpc.studies.base import read_spec

__all__ = [
    "CLASSIFIER_FREE",
    "METHODS",
    "FlowStep",
    "LhcoSpec",
    "flow_config",
    "load_spec",
    "prepare_config",
]

#: The methods, each a way to build the classifier's two classes (or, ANODE, a score).
METHODS = ("cathode", "anode", "idealized", "supervised", "cwola")
#: Methods that score with their flows, without a classifier.
CLASSIFIER_FREE = ("anode",)


@dataclass
class InputsSpec:
    """The two R&D input files, or the size of the synthetic ones written instead."""

    features: str = ""
    extra: str = ""
    synthetic_events: int = field(default=400_000, metadata={"min": 1000})
    synthetic_extra_events: int = field(default=0, metadata={"min": 0})


@dataclass
class FlowStep:
    """A flow's training config (bundled name or file) and nested overrides."""

    config: str = "lhco/cathode"
    set: dict[str, Any] = field(default_factory=dict)


@dataclass
class TemplateSpec:
    """CATHODE's background template: the mjj KDE and the number of sampled events."""

    n_samples: int = field(default=400_000, metadata={"min": 100})
    bandwidth: float = field(default=0.01, metadata={"min": 0, "exclusive": True})


@dataclass
class EvaluationSpec:
    """Cuts of the SIC figures, the closure bootstrap and the sculpting check."""

    fpr_min: float = field(default=1.84e-5, metadata={"min": 0})
    min_background: int = field(default=25, metadata={"min": 0})
    bootstrap: int = field(default=200, metadata={"min": 10})
    keep_fractions: list[float] = field(default_factory=lambda: [0.2, 0.05, 0.01])
    mjj_bins: int = field(default=20, metadata={"min": 2})
    tpr_points: int = field(default=200, metadata={"min": 10})


@dataclass
class LhcoSpec:
    """A validated anomaly-detection study spec (see the module docstring)."""

    name: str = "lhco_anomaly"
    inputs: InputsSpec = field(default_factory=InputsSpec)
    prepare: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    classifiers: list[str] = field(default_factory=lambda: ["trees", "neural"])
    feature_sets: list[str] = field(default_factory=lambda: ["baseline"])
    noise: list[int] = field(default_factory=lambda: [0])
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    n_signal: list[int] = field(default_factory=lambda: [1000])
    reference_n_signal: int = field(default=1000, metadata={"min": 0})
    outer_flow: FlowStep = field(default_factory=FlowStep)
    inner_flow: FlowStep = field(default_factory=lambda: FlowStep("lhco/anode_inner"))
    template: TemplateSpec = field(default_factory=TemplateSpec)
    neural: dict[str, Any] = field(default_factory=dict)
    trees: dict[str, Any] = field(default_factory=dict)
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    shared_dir: str = ""


def _check_names(values: list[Any], allowed: tuple, key: str, where: str) -> None:
    if not values:
        raise ConfigError(f"{where}: {key} is empty")
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: {key} repeats a value")
    for value in values:
        if value not in allowed:
            raise ConfigError(
                f"{where}: {key}: unknown {value!r}{suggest(str(value), allowed)}; "
                f"expected one of {', '.join(allowed)}"
            )


def flow_config(step: FlowStep, features: list[str], dataset: Path, seed: int) -> Config:
    """The resolved training config of a study flow on a prepared split's dataset."""
    raw = yaml.safe_load(resolve("config", step.config).read_text(encoding="utf-8")) or {}
    raw = merge_mappings(raw, step.set)
    raw = merge_mappings(
        raw,
        {
            "run": {"seed": seed},
            "data": {
                "source": "dataset",
                "path": str(dataset),
                "features": list(features),
                "conditions": ["mjj"],
                "region": "all",
            },
        },
    )
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{step.config}: {exc.args[0]}") from None


def prepare_config(spec: LhcoSpec, seed: int, n_signal: int) -> PrepareConfig:
    """The prepare settings of one (seed, n_signal) group."""
    return PrepareConfig.from_mapping(
        {**spec.prepare, "n_signal": n_signal, "s_over_b": None, "seed": seed}, "prepare"
    )


def _check(spec: LhcoSpec, where: str) -> None:
    _check_names(spec.methods, METHODS, "methods", where)
    _check_names(spec.classifiers, CLASSIFIER_KINDS, "classifiers", where)
    _check_names(spec.feature_sets, tuple(FEATURE_SETS), "feature_sets", where)
    for key in ("noise", "seeds", "n_signal"):
        values = getattr(spec, key)
        if not values or len(set(values)) != len(values) or min(values) < 0:
            raise ConfigError(f"{where}: {key} must be a non-empty list of distinct integers >= 0")
    if spec.reference_n_signal not in spec.n_signal:
        raise ConfigError(
            f"{where}: reference_n_signal {spec.reference_n_signal} is not one of n_signal "
            f"{spec.n_signal}"
        )
    if bool(spec.inputs.features) != bool(spec.inputs.extra):
        raise ConfigError(f"{where}: inputs needs both features and extra, or neither")
    parse_section(NeuralEnsembleConfig, spec.neural, "neural")
    parse_section(TreeEnsembleConfig, spec.trees, "trees")
    for n_signal in spec.n_signal:
        prepare_config(spec, spec.seeds[0], n_signal)
    for fraction in spec.evaluation.keep_fractions:
        if not 0 < fraction < 1:
            raise ConfigError(f"{where}: evaluation.keep_fractions must lie in (0, 1)")


def load_spec(
    path: str | Path, small: bool = False, overrides: dict[str, Any] | None = None
) -> LhcoSpec:
    """Read and validate a spec (a file or a bundled study name).

    Args:
        path: The spec file or bundled name.
        small: Lay the spec's ``small`` mapping over it.
        overrides: A mapping laid over the spec last (e.g. one seed and n_signal).

    Raises:
        ConfigError: missing file, not YAML, unknown keys or bad values.
    """
    path, raw = read_spec(path)
    tiny = raw.pop("small", {}) or {}
    if not isinstance(tiny, dict):
        raise ConfigError(f"{path}: small must be a mapping laid over the spec")
    if small:
        raw = merge_mappings(raw, tiny)
    raw = merge_mappings(raw, overrides or {})
    spec = parse_section(LhcoSpec, raw, "")
    for key in ("features", "extra"):
        value = getattr(spec.inputs, key)
        if value:
            setattr(spec.inputs, key, str((path.parent / value).resolve()))
    _check(spec, str(path))
    return spec
