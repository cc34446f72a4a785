"""Weak-supervision inputs for LHC Olympics anomaly detection: CATHODE's splits.

:func:`prepare` reads the features file (``events_anomalydetection_v2.features.h5``:
background and labelled signal) and the extra signal-region background
(``events_anomalydetection_qcd_extra_inneronly_features.h5``), injects signal into
the background (``n_signal`` events, or as many as give an SR S/B of
``s_over_b``), and writes one dataset folder (manifest and shards, the store
format of ``fedhex data convert``) per use:

=========  ============  ======================================================
folder     splits        events
=========  ============  ======================================================
sb         train, val    data outside the signal region (the outer flow)
sr         train, val    data inside it: background + injected signal
test       test          labelled SR events no training sees: extra background
                         and signal that was not injected
sim_bkg    train, val    the rest of the extra background (idealized AD)
sim_sig    train, val    the rest of the signal that was not injected (supervised)
strips     train, val    data in the strips beside the SR (CWoLa hunting)
=========  ============  ======================================================

Every folder holds the features ``mj1, delta_mj, tau21_j1, tau21_j2, tau32_j1,
tau32_j2`` (TeV for masses) and the condition ``mjj`` (TeV); the label is the
shard's class (1 signal, 0 background). "Data" is the background of the
features file plus the injected signal, shuffled; a region holds the events with
``low <= mjj < high`` (the convention of ``data.region``). The strips lie in the
sidebands, so ``strips`` events are ``sb`` events too; every other pair of
folders is disjoint, and so are the splits of a folder.

Sizes (each a :class:`PrepareConfig` key, given at the real files' size and
scaled with the input; on the real files the scale is 1 and the sizes are
CATHODE's):

* ``s_data = background events in the features file / 1,000,000``,
  ``s_signal = signal events in it / 100,000``,
  ``s_extra = events in the extra file / 612,858``;
* ``sb``: train the first ``round(sb_train * s_data)`` SB events (500k), val the
  rest; or, with ``sb_val_fraction``, that share of the SB events in val;
* ``sr``: train and val ``round(sr_train * s_data)`` and ``round(sr_val * s_data)``
  (60k each), each at most half of the SR data (the synthetic spectrum puts a
  little less of it in the SR than the real one); SR events beyond these are unused;
* extra file: its last ``round(extra_holdout * s_extra)`` events (300k) go to
  ``test`` whole; of the signal-region events of the others, the first
  ``round(test_background * s_extra)`` (40k) go to ``test`` and the rest is
  halved into ``sim_bkg`` train and val (the two parts are shuffled separately);
* signal not injected, in the SR: the first ``round(test_signal * s_signal)``
  (20k) to ``test``, the rest halved into ``sim_sig`` train and val;
* ``strips``: the strip events, ``strips_val_fraction`` of them (half) in val.

``prepare.json`` in the output folder records the config, the input files (path,
size, modification time, BLAKE3), the scales, the injected signal and the SR S/B,
and the counts of every split and class. It is written inside a temporary folder
that replaces the output folder only when complete, so an interrupted prepare
leaves nothing that looks finished; rerunning with the same config and unchanged
inputs reuses the folder, anything else is an error unless ``overwrite``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

import fedhex_hpc
from fedhex_hpc.data.convert import file_identity, source_entry, write_arrays
from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.data.shards import open_shard
from fedhex_hpc.data.sources.base import CLASS_NAMES
from fedhex_hpc.data.sources.lhco import LHCOFeaturesSource
from fedhex_hpc.errors import ConfigError, DataError, listing, suggest
from fedhex_hpc.io_utils import atomic_directory, write_json_atomic
from fedhex_hpc.seeding import rng

__all__ = [
    "DATASETS",
    "PREPARE_FILE",
    "REAL_BACKGROUND",
    "REAL_EXTRA",
    "REAL_SIGNAL",
    "PrepareConfig",
    "Prepared",
    "prepare",
]

#: What the output folder's ``prepare.json`` is called.
PREPARE_FILE = "prepare.json"
#: Dataset folders written by :func:`prepare` and their splits.
DATASETS: dict[str, tuple[str, ...]] = {
    "sb": ("train", "val"),
    "sr": ("train", "val"),
    "test": ("test",),
    "sim_bkg": ("train", "val"),
    "sim_sig": ("train", "val"),
    "strips": ("train", "val"),
}
#: Background and signal events of the real features file, events of the real extra file.
REAL_BACKGROUND = 1_000_000
REAL_SIGNAL = 100_000
REAL_EXTRA = 612_858
_FORMAT = 1
_POOL_STREAMS = {"signal": 0, "data": 1, "extra": 2, "holdout": 3}


@dataclass(frozen=True)
class PrepareConfig:
    """How :func:`prepare` injects signal and splits the events (sizes: see the module).

    Attributes:
        n_signal: Signal events injected into the data (``None`` with ``s_over_b``).
        s_over_b: Instead, the SR S/B to inject (signal in the SR over background in it).
        signal_region: The SR in mjj (TeV), ``low <= mjj < high``.
        strips: The mjj strips (TeV) beside the SR for CWoLa hunting.
        sb_val_fraction: Share of the SB in ``sb/val``; ``None``: CATHODE's rule.
        sb_train: SB training events at the real size (CATHODE's rule).
        sr_train: SR training events at the real size.
        sr_val: SR validation events at the real size.
        test_signal: Test signal events at the real size.
        test_background: Test background from the extra file's first part, real size.
        extra_holdout: Last events of the extra file that go to the test, real size.
        strips_val_fraction: Share of the strip events in ``strips/val``.
        seed: Seeds every shuffle (the signal events, the data, the extra file).
    """

    n_signal: int | None = 1000
    s_over_b: float | None = None
    signal_region: tuple[float, float] = (3.3, 3.7)
    strips: tuple[tuple[float, float], ...] = ((3.1, 3.3), (3.7, 3.9))
    sb_val_fraction: float | None = None
    sb_train: int = 500_000
    sr_train: int = 60_000
    sr_val: int = 60_000
    test_signal: int = 20_000
    test_background: int = 40_000
    extra_holdout: int = 300_000
    strips_val_fraction: float = 0.5
    seed: int = 1

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None, where: str = "prepare") -> PrepareConfig:
        """A checked config from a mapping (a spec section, parsed YAML).

        ``s_over_b`` without ``n_signal`` injects by S/B (``n_signal`` becomes ``None``).

        Args:
            d: Keys of this class; missing keys keep their defaults.
            where: The key path of ``d``, for messages (``prepare.n_signal ...``).

        Raises:
            ConfigError: An unknown key, a value of the wrong type or out of range,
                or both ``n_signal`` and ``s_over_b``.
        """
        d = {} if d is None else d
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where} must be a mapping of keys, got {d!r}")
        names = [f.name for f in fields(cls)]
        for key in d:
            if key not in names:
                raise ConfigError(
                    f"unknown key {where}.{key}{suggest(str(key), names)}; "
                    f"valid keys: {', '.join(names)}"
                )
        values = dict(d)
        if values.get("s_over_b") is not None and "n_signal" not in values:
            values["n_signal"] = None
        if "signal_region" in values:
            values["signal_region"] = _interval(values["signal_region"], f"{where}.signal_region")
        if "strips" in values:
            strips = values["strips"]
            if not isinstance(strips, list | tuple):
                raise ConfigError(f"{where}.strips must be a list of [low, high], got {strips!r}")
            values["strips"] = tuple(
                _interval(s, f"{where}.strips[{i}]") for i, s in enumerate(strips)
            )
        config = cls(**values)
        config.check(where)
        return config

    def check(self, where: str = "prepare") -> None:
        """Check types and ranges; errors name keys under ``where``.

        Raises:
            ConfigError: The first bad value.
        """
        if (self.n_signal is None) == (self.s_over_b is None):
            raise ConfigError(
                f"{where}: give exactly one of n_signal and s_over_b, got "
                f"n_signal={self.n_signal!r}, s_over_b={self.s_over_b!r}"
            )
        counts = ["sb_train", "sr_train", "sr_val", "test_signal", "test_background"]
        for name in ["n_signal", "extra_holdout", "seed", *counts]:
            value = getattr(self, name)
            if value is None and name == "n_signal":
                continue
            positive = name in counts
            if isinstance(value, bool) or not isinstance(value, int) or value < int(positive):
                kind = "a positive" if positive else "a non-negative"
                raise ConfigError(f"{where}.{name} must be {kind} integer, got {value!r}")
        _number(self.s_over_b, f"{where}.s_over_b", 0.0, None, allow_none=True)
        _number(self.sb_val_fraction, f"{where}.sb_val_fraction", 0.0, 1.0, allow_none=True)
        _number(self.strips_val_fraction, f"{where}.strips_val_fraction", 0.0, 1.0)
        low, high = _interval(self.signal_region, f"{where}.signal_region")
        for i, strip in enumerate(self.strips):
            a, b = _interval(strip, f"{where}.strips[{i}]")
            if a < high and b > low:
                raise ConfigError(
                    f"{where}.strips[{i}] [{a}, {b}] overlaps the signal region [{low}, {high}]"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (tuples as lists), as recorded in ``prepare.json``."""
        return json.loads(json.dumps(asdict(self)))


def _interval(value: Any, where: str) -> tuple[float, float]:
    ok = isinstance(value, list | tuple) and len(value) == 2
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not ok or not 0 <= value[0] < value[1]:
        raise ConfigError(f"{where} must be [low, high] in TeV with 0 <= low < high, got {value!r}")
    return float(value[0]), float(value[1])


def _number(
    value: Any, where: str, low: float, high: float | None, allow_none: bool = False
) -> None:
    if value is None and allow_none:
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not low <= value or (high is not None and not value < high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ConfigError(f"{where} must be a number {bound}, got {value!r}")


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Events:
    """Stored columns (float32, source order) and class codes of some events."""

    values: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray | slice) -> _Events:
        return _Events(self.values[index], self.labels[index])

    @staticmethod
    def concat(parts: Sequence[_Events]) -> _Events:
        return _Events(
            np.concatenate([p.values for p in parts]), np.concatenate([p.labels for p in parts])
        )


def _read(source: LHCOFeaturesSource, stored: list[str]) -> _Events:
    frames = [part.read() for part in source.partitions()]
    values = np.concatenate([f[stored].to_numpy(np.float32) for f in frames])
    labels = np.concatenate([f["class"].to_numpy(np.int64) for f in frames])
    return _Events(values, labels)


def _inside(events: _Events, column: int, interval: tuple[float, float]) -> np.ndarray:
    mjj = events.values[:, column]
    return (mjj >= interval[0]) & (mjj < interval[1])


def _shuffled(events: _Events, seed: int, pool: str) -> _Events:
    return events.take(rng(seed, "lhco_prepare", _POOL_STREAMS[pool]).permutation(len(events)))


def _scaled(real: int, scale: float) -> int:
    return max(1, round(real * scale))


# ----------------------------------------------------------------------------- splits


def _injected_count(cfg: PrepareConfig, signal_sr_share: float, background_sr: int) -> int:
    if cfg.n_signal is not None:
        return cfg.n_signal
    # the S/B's signal count in the SR, divided by the signal's SR acceptance
    return round(cfg.s_over_b * background_sr / signal_sr_share) if signal_sr_share else 0


def _halves(events: _Events) -> tuple[_Events, _Events]:
    middle = len(events) // 2
    return events.take(slice(0, middle)), events.take(slice(middle, None))


def _cut(events: _Events, n_val: int) -> tuple[_Events, _Events]:
    """(train, val) with the last ``n_val`` events in val."""
    return events.take(slice(0, len(events) - n_val)), events.take(slice(len(events) - n_val, None))


def _splits(
    features: Path,
    extra: Path,
    data_events: _Events,
    extra_events: _Events,
    mjj: int,
    cfg: PrepareConfig,
) -> tuple[dict[str, dict[str, _Events]], dict[str, Any]]:
    """Every dataset's splits and the facts ``prepare.json`` records about them."""
    background = data_events.take(data_events.labels == 0)
    signal = data_events.take(data_events.labels == 1)
    if not len(signal):
        raise DataError(
            f"{features} holds no signal events (label 1): the test split needs labelled signal"
        )
    if not len(background):
        raise DataError(f"{features} holds no background events (label 0)")
    scale = {
        "data": len(background) / REAL_BACKGROUND,
        "signal": len(signal) / REAL_SIGNAL,
        "extra": len(extra_events) / REAL_EXTRA,
    }
    sr = cfg.signal_region
    low, high = float(background.values[:, mjj].min()), float(background.values[:, mjj].max())
    if sr[0] < low or sr[1] > high:
        raise DataError(
            f"signal region [{sr[0]}, {sr[1]}] TeV lies outside the mjj range of {features} "
            f"([{low:.4g}, {high:.4g}] TeV)"
        )
    background_sr = int(_inside(background, mjj, sr).sum())
    if not background_sr:
        raise DataError(
            f"no background events of {features} in the signal region [{sr[0]}, {sr[1]}] TeV"
        )
    signal = _shuffled(signal, cfg.seed, "signal")
    signal_in_sr = _inside(signal, mjj, sr)
    n_inject = _injected_count(cfg, float(signal_in_sr.mean()), background_sr)
    if n_inject > len(signal):
        raise DataError(
            f"n_signal {n_inject} is larger than the {len(signal)} signal events in {features}"
        )
    spare = signal.take(slice(n_inject, None))
    spare_sr = spare.take(signal_in_sr[n_inject:])
    n_test_signal = _scaled(cfg.test_signal, scale["signal"])
    if len(spare_sr) < n_test_signal + 2:
        raise DataError(
            f"n_signal {n_inject} is larger than the signal available in {features}: it leaves "
            f"{len(spare_sr)} signal-region signal events, fewer than the {n_test_signal + 2} "
            "the test and sim_sig splits need"
        )
    data = _shuffled(
        _Events.concat([background, signal.take(slice(0, n_inject))]), cfg.seed, "data"
    )
    in_sr = _inside(data, mjj, sr)
    sr_data, sb_data = data.take(in_sr), data.take(~in_sr)
    n_sr_train = min(_scaled(cfg.sr_train, scale["data"]), len(sr_data) // 2)
    n_sr_val = min(_scaled(cfg.sr_val, scale["data"]), len(sr_data) - n_sr_train)
    if cfg.sb_val_fraction is None:
        n_sb_val = len(sb_data) - _scaled(cfg.sb_train, scale["data"])
    else:
        n_sb_val = round(cfg.sb_val_fraction * len(sb_data))
    if not 0 < n_sb_val < len(sb_data):
        raise DataError(
            f"the {len(sb_data)} sideband events of {features} leave no flow "
            f"{'training' if n_sb_val >= len(sb_data) else 'validation'} events "
            f"(sb_train {cfg.sb_train} at scale {scale['data']:.4g}, "
            f"sb_val_fraction {cfg.sb_val_fraction})"
        )
    in_strips = np.zeros(len(data), bool)
    for strip in cfg.strips:
        in_strips |= _inside(data, mjj, strip)
    strips = data.take(in_strips)
    n_strips_val = round(cfg.strips_val_fraction * len(strips))

    n_holdout = min(_scaled(cfg.extra_holdout, scale["extra"]), len(extra_events))
    first = extra_events.take(slice(0, len(extra_events) - n_holdout))
    holdout = extra_events.take(slice(len(extra_events) - n_holdout, None))
    first = _shuffled(first, cfg.seed, "extra")
    holdout = _shuffled(holdout, cfg.seed, "holdout")
    first_sr = first.take(_inside(first, mjj, sr))
    holdout_sr = holdout.take(_inside(holdout, mjj, sr))
    n_test_background = _scaled(cfg.test_background, scale["extra"])
    if len(first_sr) < n_test_background + 2:
        raise DataError(
            f"{extra}: {len(first_sr)} signal-region events before its last {n_holdout}, "
            f"fewer than the {n_test_background + 2} the test and sim_bkg splits need"
        )
    test = _Events.concat(
        [
            first_sr.take(slice(0, n_test_background)),
            holdout_sr,
            spare_sr.take(slice(0, n_test_signal)),
        ]
    )
    splits = {
        "sb": dict(zip(("train", "val"), _cut(sb_data, n_sb_val), strict=True)),
        "sr": {
            "train": sr_data.take(slice(0, n_sr_train)),
            "val": sr_data.take(slice(n_sr_train, n_sr_train + n_sr_val)),
        },
        "test": {"test": test},
        "sim_bkg": dict(
            zip(
                ("train", "val"),
                _halves(first_sr.take(slice(n_test_background, None))),
                strict=True,
            )
        ),
        "sim_sig": dict(
            zip(("train", "val"), _halves(spare_sr.take(slice(n_test_signal, None))), strict=True)
        ),
        "strips": dict(zip(("train", "val"), _cut(strips, n_strips_val), strict=True)),
    }
    for name, parts in splits.items():
        for split, events in parts.items():
            if not len(events):
                raise DataError(
                    f"{name}/{split} would hold no events: the inputs are too small for the "
                    f"splits (scale {scale['data']:.4g} of the real features file)"
                )
    injected_sr = int(signal_in_sr[:n_inject].sum())
    facts = {
        "scale": scale,
        "n_injected": n_inject,
        "n_injected_sr": injected_sr,
        "background_sr": background_sr,
        "s_over_b": injected_sr / background_sr,
    }
    return splits, facts


# ----------------------------------------------------------------------------- output


def _counts(events: _Events) -> dict[str, int]:
    return {cls: int(np.sum(events.labels == code)) for code, cls in CLASS_NAMES.items()}


@dataclass(frozen=True)
class Prepared:
    """A finished :func:`prepare` folder."""

    path: Path

    @classmethod
    def read(cls, path: str | Path) -> Prepared:
        """Open a finished prepare folder.

        Raises:
            DataError: ``path`` holds no ``prepare.json``.
        """
        path = Path(path)
        if not (path / PREPARE_FILE).is_file():
            raise DataError(f"{path} is not a finished prepare folder (no {PREPARE_FILE})")
        return cls(path)

    def summary(self) -> dict[str, Any]:
        """The contents of ``prepare.json``: config, inputs, S/B, counts per split and class."""
        return json.loads((self.path / PREPARE_FILE).read_text(encoding="utf-8"))

    def dataset(self, name: str) -> Path:
        """The dataset folder ``name`` (a key of :data:`DATASETS`), for ``data.path``.

        Raises:
            DataError: Unknown name.
        """
        if name not in DATASETS:
            raise DataError(
                f"no prepared dataset {name!r}{suggest(name, DATASETS)}; "
                f"datasets: {', '.join(DATASETS)}"
            )
        return self.path / name

    def columns(self, name: str, split: str, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Named columns of one split of a dataset, ``"label"`` (1 signal, 0 background) too.

        Args:
            name: A dataset (a key of :data:`DATASETS`).
            split: One of its splits.
            names: Stored column names and/or ``"label"``.

        Returns:
            Column name -> array (float32; ``label`` int64), events in shard order.

        Raises:
            DataError: Unknown dataset, split or column.
        """
        folder = self.dataset(name)
        if split not in DATASETS[name]:
            raise DataError(
                f"dataset {name!r} has no split {split!r}; splits: {listing(DATASETS[name])}"
            )
        manifest = Manifest.read(folder)
        stored = manifest.stored_columns
        unknown = [n for n in names if n not in stored and n != "label"]
        if unknown:
            raise DataError(
                f"{folder}: no column {listing(unknown)}; columns: {listing([*stored, 'label'])}"
            )
        codes = {cls: code for code, cls in CLASS_NAMES.items()}
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for shard in manifest.shards_of(split):
            with open_shard(folder / shard.path) as fh:
                data = fh["data"][()]
            for n in names:
                column = (
                    np.full(len(data), codes[shard.cls], np.int64)
                    if n == "label"
                    else data[:, stored.index(n)]
                )
                parts[n].append(column)
        return {
            n: np.concatenate(p) if p else np.zeros(0, np.int64 if n == "label" else np.float32)
            for n, p in parts.items()
        }


def _inputs(features: Path, extra: Path) -> dict[str, dict[str, Any]]:
    return {role: file_identity(path) for role, path in (("features", features), ("extra", extra))}


def _reuse(out: Path, cfg: PrepareConfig, inputs: dict, overwrite: bool) -> Prepared | None:
    """The finished folder if it matches; None if it is to be (re)built."""
    if not out.exists() or overwrite:
        return None
    if not (out / PREPARE_FILE).is_file():
        if out.is_dir() and not any(out.iterdir()):
            return None
        raise DataError(
            f"{out} exists and is not a finished prepare folder; remove it or pass overwrite"
        )
    previous = Prepared(out).summary()
    if previous.get("config") != cfg.to_dict():
        changed = sorted(
            k for k, v in cfg.to_dict().items() if previous.get("config", {}).get(k) != v
        )
        raise DataError(
            f"{out} was prepared with another config ({', '.join(changed)}); "
            "use another folder or pass overwrite"
        )
    stale = [
        role
        for role, identity in inputs.items()
        if {k: previous["inputs"][role].get(k) for k in identity} != identity
    ]
    if stale:
        raise DataError(
            f"{out} was prepared from other or changed inputs ({', '.join(stale)} file); "
            "pass overwrite to prepare it again"
        )
    return Prepared(out)


def prepare(
    features_file: Path,
    extra_file: Path,
    out: Path,
    cfg: PrepareConfig,
    *,
    overwrite: bool = False,
) -> Prepared:
    """Inject signal and write CATHODE's splits as dataset folders (see the module).

    Args:
        features_file: The features file (background and labelled signal).
        extra_file: The extra signal-region background (features layout).
        out: The output folder (``<out>/sb``, ``<out>/sr``, ... and ``prepare.json``).
        cfg: Injection, regions and sizes.
        overwrite: Rebuild a folder prepared with another config or other inputs.

    Returns:
        The prepared folder (reused when already prepared with ``cfg`` from the
        same, unchanged inputs).

    Raises:
        ConfigError: A bad config value.
        DataError: Unreadable inputs; features without labels or without signal;
            more signal asked for than available; a signal region outside the
            data's mjj range; a signal region, or any split, left empty; ``out``
            prepared otherwise (without ``overwrite``).
    """
    features_file, extra_file = Path(features_file).resolve(), Path(extra_file).resolve()
    out = Path(out)
    cfg.check()
    data_source = LHCOFeaturesSource(features_file)
    extra_source = LHCOFeaturesSource(extra_file, background_only=True)
    inputs = _inputs(features_file, extra_file)
    reused = _reuse(out, cfg, inputs, overwrite)
    if reused is not None:
        return reused
    columns = [c for c in data_source.columns if c.role != "class"]
    stored = [c.name for c in columns]
    splits, facts = _splits(
        features_file,
        extra_file,
        _read(data_source, stored),
        _read(extra_source, stored),
        stored.index("mjj"),
        cfg,
    )
    entries = {"features": source_entry(features_file), "extra": source_entry(extra_file)}
    sources = list(entries.values())
    with atomic_directory(out) as tmp:
        for name, parts in splits.items():
            write_arrays(
                tmp / name,
                columns,
                {split: (events.values, events.labels) for split, events in parts.items()},
                source=f"lhco_weak_supervision/{name}",
                options={"prepare": cfg.to_dict(), "dataset": name},
                sources=sources,
            )
        summary = {
            "format": _FORMAT,
            "config": cfg.to_dict(),
            "inputs": {role: {**inputs[role], **entries[role]} for role in inputs},
            **facts,
            "datasets": {
                name: {split: _counts(events) for split, events in parts.items()}
                for name, parts in splits.items()
            },
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "package_version": fedhex_hpc.__version__,
        }
        write_json_atomic(tmp / PREPARE_FILE, summary)
    return Prepared(out)
