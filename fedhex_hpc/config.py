"""Typed run configuration: YAML in, validated dataclasses out, errors with key paths.

Defaults live in the dataclasses below; a YAML file overrides them and
``--set key.path=value`` overrides the file. Every problem is reported as one
:class:`~fedhex_hpc.errors.ConfigError` line naming the key path, for example
``config error: flow.hidden_units[1] must be a positive integer, got -3``.
"""

from __future__ import annotations

import dataclasses
import reprlib
import stat
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fedhex_hpc.errors import ConfigError, suggest

__all__ = [
    "Config",
    "DataConfig",
    "EarlyStoppingConfig",
    "EvaluateConfig",
    "FlowConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_override",
    "config_keys",
    "config_to_dict",
    "load_config",
    "merge_mappings",
    "parse_config",
    "parse_section",
]


def _meta(minimum: float | None = None, exclusive: bool = False, doc: str = "") -> dict:
    return {"min": minimum, "exclusive": exclusive, "doc": doc}


@dataclass
class RunConfig:
    """Identity of a run."""

    name: str = "run"
    seed: int = field(default=1, metadata=_meta(0))


@dataclass
class DataConfig:
    """Where training events come from.

    ``source: target`` draws seeded samples from a known distribution;
    ``source: file`` reads named columns from a ``.npy``/``.npz``/HDF5 file and
    splits it by a seeded permutation; ``source: dataset`` reads a dataset folder
    made by ``fedhex data convert`` (columns default to the roles in its
    manifest; ``classes`` and ``region`` select events, the region on
    ``region_column``, by default the first condition). A training split larger
    than ``memory_budget_mb`` is streamed from its shards through a shuffle buffer.
    """

    source: Literal["target", "file", "dataset"] = "target"
    target: str = "dim2/three_in_row"
    target_params: dict[str, Any] = field(default_factory=dict)
    n_train: int = field(default=30_720, metadata=_meta(1))
    n_val: int = field(default=2_048, metadata=_meta(1))
    n_test: int = field(default=10_000, metadata=_meta(1))
    path: str = ""
    key: str = ""
    features: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    weight: str = ""
    val_fraction: float = field(default=0.1, metadata=_meta(0, exclusive=True))
    test_fraction: float = field(default=0.1, metadata=_meta(0, exclusive=True))
    classes: list[Literal["background", "signal"]] = field(default_factory=list)
    region: Literal["all", "signal", "sideband"] = "all"
    region_column: str = ""
    signal_region: list[float] = field(default_factory=lambda: [3.3, 3.7])
    memory_budget_mb: int = field(default=4096, metadata=_meta(0))
    shuffle_buffer: int = field(default=262_144, metadata=_meta(1))


@dataclass
class FlowConfig:
    """Architecture of the MAF.

    With ``batch_norm``, ``batch_norm_stats: moving`` updates each layer's running
    statistics from every training batch; ``epoch_pass`` freezes them during an epoch and
    sets them after it from one full pass over the training set (CATHODE's recipe).
    """

    n_blocks: int = field(default=5, metadata=_meta(1))
    hidden_units: list[int] = field(default_factory=lambda: [200, 200], metadata=_meta(1))
    activation: Literal["relu", "tanh", "elu", "gelu", "silu"] = "relu"
    permutation: Literal["reverse", "random"] = "random"
    log_scale_bound: float = field(default=3.0, metadata=_meta(0, exclusive=True))
    batch_norm: bool = False
    batch_norm_stats: Literal["moving", "epoch_pass"] = "moving"
    preprocessing: Literal["standardize", "logit", "none"] = "standardize"
    logit_alpha: float = field(default=0.05, metadata=_meta(0, exclusive=True))
    noise_std: float = field(default=0.0, metadata=_meta(0))
    identity_init: bool = False
    transform: Literal["affine", "spline"] = "affine"
    spline_bins: int = field(default=8, metadata=_meta(2))
    spline_range: float = field(default=5.0, metadata=_meta(0, exclusive=True))


@dataclass
class ScheduleConfig:
    """Learning-rate schedule counted in epochs (never in batches)."""

    kind: Literal["constant", "polynomial", "exponential", "cosine"] = "polynomial"
    final_learning_rate: float = field(default=1e-4, metadata=_meta(0))
    decay_epochs: int = field(default=500, metadata=_meta(1))
    power: float = field(default=0.5, metadata=_meta(0, exclusive=True))


@dataclass
class EarlyStoppingConfig:
    """Stop when the validation loss has not improved for ``patience`` epochs."""

    patience: int = field(default=50, metadata=_meta(0))
    min_delta: float = field(default=0.0, metadata=_meta(0))


@dataclass
class TrainConfig:
    """Optimisation, checkpoints and logging.

    ``weight_decay`` adds ``weight_decay * w`` to the gradient of every trainable
    variable before the Adam update (torch Adam's L2 ``weight_decay``, not AdamW).
    ``keep_best_epochs: k`` keeps the weights of the k epochs with the lowest
    validation loss in the run's ``ensemble/`` folder. ``shards`` cuts every batch
    into that many row parts computed side by side, one thread each (0: one per
    thread of ``threads``, or per core, for a single process on a CPU without
    ``jit_compile``; else 1); see :class:`~fedhex_hpc.flows.FlowModel`.
    """

    batch_size: int = field(default=1024, metadata=_meta(1))
    max_epochs: int = field(default=2000, metadata=_meta(1))
    learning_rate: float = field(default=1e-3, metadata=_meta(0, exclusive=True))
    weight_decay: float = field(default=0.0, metadata=_meta(0))
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    restore_best: bool = True
    checkpoint_every: int = field(default=10, metadata=_meta(1))
    keep_checkpoints: int = field(default=3, metadata=_meta(1))
    keep_best_epochs: int = field(default=0, metadata=_meta(0))
    log_every: int = field(default=10, metadata=_meta(1))
    jit_compile: bool = False
    shuffle: bool = True
    deterministic: bool = False
    threads: int = field(default=0, metadata=_meta(0))
    shards: int = field(default=0, metadata=_meta(0))
    distributed: Literal["auto", "horovod", "none"] = "auto"
    scale_learning_rate: bool = True
    warmup_epochs: int = field(default=0, metadata=_meta(0))


@dataclass
class EvaluateConfig:
    """What ``fedhex evaluate`` computes after training."""

    n_kl_samples: int = field(default=10_000, metadata=_meta(1))
    n_generated: int = field(default=10_000, metadata=_meta(1))
    bins: int = field(default=50, metadata=_meta(2))
    classifier_auc: bool = True
    plots: bool = True


@dataclass
class Config:
    """A complete, resolved training configuration."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}s"
    if origin is dict:
        return "a mapping"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(tp, str(tp))


def _check_scalar(value: Any, tp: Any, path: str, meta: dict) -> Any:
    minimum = meta.get("min")
    exclusive = meta.get("exclusive", False)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path} must be a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}")
        return value
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        if tp is int and minimum in (0, 1) and not exclusive:
            kind = "a positive integer" if minimum == 1 else "a non-negative integer"
            raise ConfigError(f"{path} must be {kind}, got {value!r}")
        relation = ">" if exclusive else ">="
        raise ConfigError(f"{path} must be {relation} {minimum}, got {value!r}")
    return value


def _check(value: Any, tp: Any, path: str, meta: dict) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path} must be {_describe(tp)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path} must be {_describe(tp)}, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_check(v, item, f"{path}[{i}]", meta) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path} must be a mapping, got {value!r}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported config type at {path}")
    return _check_scalar(value, tp, path, meta)


def _build(cls: type, raw: Any, path: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        where = path or "the config"
        raise ConfigError(f"{where} must be a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            full = f"{path}.{key}" if path else str(key)
            raise ConfigError(
                f"unknown key {full}{suggest(str(key), fields)}; valid keys: {', '.join(fields)}"
            )
    values = {}
    for name, f in fields.items():
        if name in raw:
            full = f"{path}.{name}" if path else name
            values[name] = _check(raw[name], hints[name], full, dict(f.metadata))
    return cls(**values)


def parse_section(cls: type, raw: Any, path: str) -> Any:
    """Validate ``raw`` against the dataclass ``cls``; errors name keys under ``path``."""
    return _build(cls, raw, path)


def config_keys(cls: type | None = None, prefix: str = "") -> list[str]:
    """Every leaf key path of a config dataclass, e.g. ``flow.n_blocks``."""
    cls = cls or Config
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            keys += config_keys(hints[f.name], path + ".")
        else:
            keys.append(path)
    return keys


def config_to_dict(config: Config) -> dict:
    """Plain nested dict of ``config`` (what is written to a run's config.yaml)."""
    return dataclasses.asdict(config)


def apply_override(raw: dict, assignment: str) -> None:
    """Set ``key.path=value`` (value read as YAML) in the nested mapping ``raw``."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects key.path=value, got {assignment!r}")
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def parse_config(raw: dict | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Validate a raw mapping (plus ``key=value`` overrides) into a :class:`Config`."""
    raw = {} if raw is None else dict(raw)
    raw = yaml.safe_load(yaml.safe_dump(raw))  # deep copy of plain data
    for assignment in overrides:
        apply_override(raw, assignment)
    config = _build(Config, raw, "")
    _check_consistency(config)
    return config


def _check_consistency(config: Config) -> None:
    data = config.data
    if data.source == "dataset" and not data.path:
        raise ConfigError("data.path must name a dataset folder when data.source is 'dataset'")
    if len(data.signal_region) != 2 or data.signal_region[0] >= data.signal_region[1]:
        raise ConfigError(f"data.signal_region must be [low, high], got {data.signal_region}")
    if data.source == "file":
        if not data.path:
            raise ConfigError("data.path must name a file when data.source is 'file'")
        if not data.features:
            raise ConfigError(
                "data.features must list at least one column when data.source is 'file'"
            )
        if data.val_fraction + data.test_fraction >= 1:
            raise ConfigError(
                "data.val_fraction + data.test_fraction must be < 1, got "
                f"{data.val_fraction + data.test_fraction}"
            )


def _file_kind(path: Path) -> str:
    mode = path.stat().st_mode
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


_YAML_KINDS = {
    list: "a list",
    str: "a string",
    bool: "true/false",
    int: "a number",
    float: "a number",
}


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read and validate a YAML config file.

    Args:
        path: YAML file whose top level maps section names (``run``, ``data``, ``flow``,
            ``train``, ``evaluate``) to their keys; ``{}`` selects every default.
        overrides: ``key.path=value`` assignments applied on top of the file.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file is missing, not a regular file, empty, not YAML, not a
            mapping at the top level, or holds an invalid key or value.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(
            f"config file {path} exists but is {_file_kind(path)}, not a regular YAML file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read as UTF-8 text: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{path}{where} is not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if raw is None:
        raise ConfigError(
            f"config file {path} is empty (no settings); write {{}} in it to train with "
            "every default"
        )
    if not isinstance(raw, dict):
        kind = _YAML_KINDS.get(type(raw), type(raw).__name__)
        raise ConfigError(
            f"config file {path} must map section names (run, data, flow, train, evaluate) "
            f"to their keys at the top level, got {kind}: {reprlib.repr(raw)}"
        )
    return parse_config(raw, overrides)


def merge_mappings(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on top, nested mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_mappings(out[key], value) if both else value
    return out
