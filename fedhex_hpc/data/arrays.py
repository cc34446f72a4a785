"""In-memory training data: seeded samples of a known target or named columns of a file.

Splits are drawn by a seeded permutation, never by row order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedhex_hpc.config import DataConfig
from fedhex_hpc.data.columns import read_columns
from fedhex_hpc.errors import DataError
from fedhex_hpc.seeding import derive_seed, rng

__all__ = ["Arrays", "Splits", "check_finite", "load_splits"]


@dataclass(frozen=True)
class Arrays:
    """One split: features (n, d) float32, conditions (n, c) or None, weights (n,) or None."""

    x: np.ndarray
    cond: np.ndarray | None = None
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    @classmethod
    def concat(cls, parts: list[Arrays]) -> Arrays:
        """The rows of ``parts`` one after the other (all with the same roles)."""
        first = parts[0]
        return cls(
            np.concatenate([p.x for p in parts]),
            None if first.cond is None else np.concatenate([p.cond for p in parts]),
            None if first.weight is None else np.concatenate([p.weight for p in parts]),
        )

    def take(self, index: np.ndarray) -> Arrays:
        """The rows ``index`` of every array."""
        return Arrays(
            self.x[index],
            None if self.cond is None else self.cond[index],
            None if self.weight is None else self.weight[index],
        )


@dataclass(frozen=True)
class Splits:
    """Train, validation and test splits with their column names."""

    train: Arrays
    val: Arrays
    test: Arrays
    feature_names: list[str]
    condition_names: list[str]


def check_finite(values: np.ndarray, what: str) -> None:
    """Raise a one-line :class:`DataError` if ``values`` is empty or has NaN/Inf rows."""
    if len(values) == 0:
        raise DataError(f"{what} is empty: no events to train on")
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad.any():
        raise DataError(
            f"{what} has {int(bad.sum())} of {len(values)} rows with NaN or Inf values "
            f"(first at row {int(np.argmax(bad))})"
        )


def _from_target(cfg: DataConfig, seed: int) -> Splits:
    # imported here: the targets load scipy.stats (0.7 s), which `fedhex data` never needs
    from fedhex_hpc.targets import get_target

    target = get_target(cfg.target, **cfg.target_params)

    def draw(n: int, stream: str) -> Arrays:
        x, cond = target.sample(n, seed=derive_seed(seed, stream))
        return Arrays(x.astype(np.float32), None if cond is None else cond.astype(np.float32))

    return Splits(
        train=draw(cfg.n_train, "target_train"),
        val=draw(cfg.n_val, "target_val"),
        test=draw(cfg.n_test, "target_test"),
        feature_names=list(target.feature_names),
        condition_names=list(target.condition_names),
    )


def _from_file(cfg: DataConfig, seed: int) -> Splits:
    path = Path(cfg.path)
    names = [*cfg.features, *cfg.conditions, *([cfg.weight] if cfg.weight else [])]
    columns = read_columns(path, names, cfg.key)
    table = np.stack([columns[n] for n in names], axis=1).astype(np.float32)
    check_finite(table, f"{path}")
    n_feat, n_cond = len(cfg.features), len(cfg.conditions)
    rows = Arrays(
        table[:, :n_feat],
        table[:, n_feat : n_feat + n_cond] if n_cond else None,
        table[:, -1] if cfg.weight else None,
    )
    order = rng(seed, "file_split").permutation(len(rows))
    n_test = round(cfg.test_fraction * len(rows))
    n_val = round(cfg.val_fraction * len(rows))
    if len(rows) - n_test - n_val < 1 or n_val < 1 or n_test < 1:
        raise DataError(
            f"{path} has {len(rows)} rows: too few for validation fraction {cfg.val_fraction} "
            f"and test fraction {cfg.test_fraction}"
        )
    return Splits(
        train=rows.take(order[n_test + n_val :]),
        val=rows.take(order[n_test : n_test + n_val]),
        test=rows.take(order[:n_test]),
        feature_names=list(cfg.features),
        condition_names=list(cfg.conditions),
    )


def load_splits(cfg: DataConfig, seed: int) -> Splits:
    """Load the train/validation/test splits a config describes, seeded by ``seed``."""
    return _from_target(cfg, seed) if cfg.source == "target" else _from_file(cfg, seed)
