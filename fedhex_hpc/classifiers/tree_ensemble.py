"""The boosted-tree ensemble of "Back to the Roots" (arXiv:2309.13111).

Each of ``n_models`` scikit-learn ``HistGradientBoostingClassifier`` fits on its
own random part of the events (:func:`tree_splits`) with class-balanced sample
weights and is early-stopped on the rest: boosting stops after
``n_iter_no_change`` iterations without a lower weighted log-loss on the
stopping events, which the model's fit never sees. Nothing is refitted. The
score is the mean of the models' signal probabilities.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits

from fedhex_hpc.classifiers.config import TreeEnsembleConfig
from fedhex_hpc.classifiers.ensemble import ScoreModel, balanced_weights
from fedhex_hpc.errors import ConfigError, DataError
from fedhex_hpc.io_utils import atomic_path
from fedhex_hpc.seeding import derive_seed, rng

__all__ = ["TreeEnsemble", "train_tree_ensemble", "tree_splits"]

_MODELS_FILE = "trees.joblib"

Events = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class TreeEnsemble(ScoreModel):
    """The fitted boosted-tree models.

    Attributes:
        models: The early-stopped classifiers.
        n_features: Input columns.
        threads: OpenMP threads used to predict.
        summary: Settings, per model its iterations and stopping loss, and the
            ensemble's loss on the validation events.
    """

    kind: ClassVar[str] = "trees"
    models: list[HistGradientBoostingClassifier]
    n_features: int
    threads: int = 1
    summary: dict[str, Any] = field(default_factory=dict)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        # OpenMP tree code slows down by orders of magnitude on shared, busy cores.
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            return np.mean([m.predict_proba(x)[:, 1] for m in self.models], axis=0)

    def _write(self, folder: Path) -> None:
        with atomic_path(folder / _MODELS_FILE) as tmp:
            joblib.dump(self.models, tmp)

    @classmethod
    def _read(cls, folder: Path, meta: dict[str, Any]) -> TreeEnsemble:
        try:
            models = joblib.load(folder / _MODELS_FILE)
        except (OSError, EOFError, ValueError) as err:
            raise DataError(f"{folder}: incomplete tree classifier ({err})") from None
        threads = int(meta["summary"].get("config", {}).get("threads", 1))
        return cls(models, int(meta["n_features"]), threads, meta["summary"])


def tree_splits(
    n: int, n_models: int, stop_share: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per model, the sorted indices of its fit events and of its stopping events.

    Model ``m`` draws a permutation of ``range(n)`` from the stream ``tree_split``
    of ``seed`` and ``m``; its first ``round(stop_share * n)`` entries stop the
    boosting, the others fit it. The two parts are disjoint and cover every event.
    """
    n_stop = round(stop_share * n)
    splits = []
    for m in range(n_models):
        order = rng(seed, "tree_split", m).permutation(n)
        splits.append((np.sort(order[n_stop:]), np.sort(order[:n_stop])))
    return splits


def _check_part(y: np.ndarray, w: np.ndarray, model: int, part: str) -> None:
    for label in (0, 1):
        if not np.sum(w[y == label]) > 0:
            raise DataError(
                f"tree model {model}: its {part} events have no class {label} events; "
                f"use more events or another trees.stop_share"
            )


def train_tree_ensemble(
    train: Events, val: Events, cfg: TreeEnsembleConfig, seed: int
) -> TreeEnsemble:
    """Fit ``cfg.n_models`` early-stopped boosted-tree classifiers and average them.

    Args:
        train: Checked inputs, labels and sample weights
            (:func:`~fedhex_hpc.classifiers.ensemble.check_events`).
        val: Checked validation events: pooled with ``train`` before the splits when
            ``cfg.pool_validation``; always scored by the ensemble for the summary
            (``val_loss``, the balanced weighted log-loss, optimistic when pooled).
        cfg: Boosting and ensemble settings.
        seed: Each model's events (stream ``tree_split``) and random state
            (stream ``tree_init``).

    Raises:
        ConfigError: ``stop_share`` is not below 1.
        DataError: A model's fit or stopping events lack a class.
    """
    if not cfg.stop_share < 1:
        raise ConfigError(f"trees.stop_share must be < 1, got {cfg.stop_share}")
    pooled = (np.concatenate(parts) for parts in zip(train, val, strict=True))
    x, y, w = pooled if cfg.pool_validation else train
    if cfg.balanced:
        w = balanced_weights(y, w)
    models, members = [], []
    with threadpool_limits(limits=cfg.threads, user_api="openmp"):
        for m, (fit, stop) in enumerate(tree_splits(len(x), cfg.n_models, cfg.stop_share, seed)):
            _check_part(y[fit], w[fit], m, "fit")
            _check_part(y[stop], w[stop], m, "stopping")
            model = HistGradientBoostingClassifier(
                learning_rate=cfg.learning_rate,
                max_iter=cfg.max_iter,
                max_leaf_nodes=cfg.max_leaf_nodes,
                early_stopping=True,
                scoring="loss",
                n_iter_no_change=cfg.n_iter_no_change,
                random_state=derive_seed(seed, "tree_init", m) % 2**32,
            )
            model.fit(
                x[fit],
                y[fit],
                sample_weight=w[fit],
                X_val=x[stop],
                y_val=y[stop],
                sample_weight_val=w[stop],
            )
            models.append(model)
            # scoring="loss" records minus the weighted log-loss per iteration
            members.append(
                {"n_iter": int(model.n_iter_), "stop_loss": float(-model.validation_score_[-1])}
            )
    ensemble = TreeEnsemble(models, x.shape[1], cfg.threads)
    x_val, y_val, w_val = val
    w_val = balanced_weights(y_val, w_val) if cfg.balanced else w_val
    p_val = np.clip(ensemble._predict(x_val), 1e-7, 1 - 1e-7)
    summary = {
        "config": dataclasses.asdict(cfg),
        "seed": seed,
        "members": members,
        "val_loss": float(log_loss(y_val, p_val, sample_weight=w_val, labels=[0, 1])),
        "n_train": len(train[0]),
        "n_val": len(val[0]),
    }
    return dataclasses.replace(ensemble, summary=summary)
