"""Mixlearn study specs: the flows' training config, the grid, the classifier, validation.

A spec is YAML (every key has a default; paths are relative to the spec file)::

    name: mixlearn
    dataset: ../data/miniboone        # a dataset folder with signal and background events
    seed: 1                           # flows, synthetic pools, event subsets, classifiers
    flows:                            # one training config for both MAFs (fedhex train keys)
      flow: {n_blocks: 30}
      train: {max_epochs: 2000}
    grid:
      models: [0, 1, 2]               # classifier repetitions
      genuine: [1000, 10000]          # genuine training events per classifier
      synthetic: [0, 10000]           # synthetic training events per classifier
    validation: 1500                  # classifier validation events, split pro rata
    classifier: {hidden_units: [512, 512], max_epochs: 1000, patience: 15}
    small:                            # what --small replaces, key by key
      flows: {train: {max_epochs: 2}}
      grid: {models: [0, 1]}

The study sets ``run.name``, ``run.seed``, ``data.source``, ``data.path`` and
``data.classes`` of the flows itself; ``flows`` may not set them. Other ``data``
keys (``features``, ``region``, ...) select the events of the flows and of the
classifiers alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedhex_hpc.classifiers.config import ClassifierConfig
from fedhex_hpc.config import Config, merge_mappings, parse_config, parse_section
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.resources import is_bundled
from fedhex_hpc.studies.base import read_spec

__all__ = [
    "CLASSES",
    "ClassifierConfig",
    "GridSpec",
    "MixlearnSpec",
    "flow_config",
    "load_spec",
]

#: The two classes of a mixlearn study, each with its own flow (label 1 = signal).
CLASSES = ("signal", "background")

#: Flow settings the study owns.
_STUDY_KEYS = {"run": ("name", "seed"), "data": ("source", "path", "classes")}


@dataclass
class GridSpec:
    """Classifier repetitions x genuine training counts x synthetic training counts."""

    models: list[int] = field(default_factory=lambda: list(range(10)), metadata={"min": 0})
    genuine: list[int] = field(default_factory=lambda: [1000, 10000], metadata={"min": 0})
    synthetic: list[int] = field(default_factory=lambda: [0, 10000], metadata={"min": 0})


@dataclass
class SmallSpec:
    """What ``--small`` replaces to make a study run in minutes on two cores."""

    flows: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, Any] = field(default_factory=dict)
    classifier: dict[str, Any] = field(default_factory=dict)
    validation: int = field(default=0, metadata={"min": 0})


@dataclass
class MixlearnSpec:
    """A validated mixlearn spec (see the module docstring)."""

    name: str = "mixlearn"
    dataset: str = ""
    seed: int = field(default=1, metadata={"min": 0})
    flows: dict[str, Any] = field(default_factory=dict)
    grid: GridSpec = field(default_factory=GridSpec)
    validation: int = field(default=1500, metadata={"min": 1})
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    small: SmallSpec = field(default_factory=SmallSpec)


def flow_config(spec: MixlearnSpec, cls: str) -> Config:
    """The resolved training config of the flow of class ``cls``."""
    raw = merge_mappings(
        spec.flows,
        {
            "run": {"name": f"{spec.name}-{cls}", "seed": spec.seed},
            "data": {"source": "dataset", "path": spec.dataset, "classes": [cls]},
        },
    )
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"flows: {exc.args[0]}") from None


def _check(spec: MixlearnSpec, where: str) -> None:
    for section, keys in _STUDY_KEYS.items():
        given = spec.flows.get(section) or {}
        for key in keys:
            if isinstance(given, dict) and key in given:
                raise ConfigError(f"{where}: flows.{section}.{key} is set by the study; remove it")
    for cls in CLASSES:
        flow_config(spec, cls)  # validates every flows key
    grid = spec.grid
    for name in ("models", "genuine", "synthetic"):
        values = getattr(grid, name)
        if not values or len(set(values)) != len(values):
            raise ConfigError(f"{where}: grid.{name} must be a non-empty list without repeats")
    if 0 in grid.genuine and 0 in grid.synthetic:
        raise ConfigError(
            f"{where}: grid.genuine and grid.synthetic both hold 0, a classifier without "
            "training events; drop 0 from one of them"
        )


def load_spec(
    path: str | Path, small: bool = False, dataset: str | Path | None = None
) -> MixlearnSpec:
    """Read and validate a mixlearn spec.

    Args:
        path: The spec file, or a bundled spec's name (``mixlearn``).
        small: Apply the spec's ``small`` variant.
        dataset: A dataset folder to use instead of the spec's ``dataset``.

    Returns:
        The spec with ``small`` applied and ``dataset`` made absolute.

    Raises:
        ConfigError: The file is missing or not YAML, a key is unknown (the error
            lists the valid ones), a value is out of range, or no dataset is named.
    """
    path, raw = read_spec(path)
    spec = parse_section(MixlearnSpec, raw, "")
    if small:
        parse_section(GridSpec, spec.small.grid, "small.grid")
        parse_section(ClassifierConfig, spec.small.classifier, "small.classifier")
        replaced = {
            "flows": merge_mappings(raw.get("flows") or {}, spec.small.flows),
            "grid": {**(raw.get("grid") or {}), **spec.small.grid},
            "classifier": {**(raw.get("classifier") or {}), **spec.small.classifier},
        }
        if spec.small.validation:
            replaced["validation"] = spec.small.validation
        spec = parse_section(MixlearnSpec, {**raw, **replaced}, "")
    if dataset is not None:
        spec.dataset = str(Path(dataset).resolve())
    elif spec.dataset:
        # a bundled spec's dataset path is taken from the current folder
        relative_to = Path.cwd() if is_bundled(path) else path.parent
        spec.dataset = str((relative_to / spec.dataset).resolve())
    else:
        raise ConfigError(f"{path}: no dataset; set 'dataset' in the spec or pass a dataset folder")
    _check(spec, str(path))
    return spec
