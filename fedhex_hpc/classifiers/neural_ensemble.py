"""The neural epoch ensemble: one dense network, the predictions of its best epochs averaged.

CATHODE's classifier: the network of :func:`~fedhex_hpc.classifiers.network.build_network`
trains for a fixed number of epochs on class-balanced sample weights; after each
epoch its weighted validation loss is measured, the weights of the ``n_best``
lowest-loss epochs are kept in memory, and the score is the mean of their
predicted probabilities.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fedhex_hpc._tf import tf
from fedhex_hpc.classifiers.config import NeuralEnsembleConfig
from fedhex_hpc.classifiers.ensemble import ScoreModel, balanced_weights
from fedhex_hpc.classifiers.network import build_network, fit_network
from fedhex_hpc.errors import ConfigError, DataError, TrainingError
from fedhex_hpc.flows import Standardization
from fedhex_hpc.io_utils import atomic_path, write_json_atomic
from fedhex_hpc.seeding import derive_seed

__all__ = ["NeuralEnsemble", "train_neural_ensemble"]

_WEIGHTS_FILE = "members.npz"
_NETWORK_FILE = "network.json"
_PREDICT_BATCH = 65_536

Events = tuple[np.ndarray, np.ndarray, np.ndarray]


class _KeepBestEpochs(tf.keras.callbacks.Callback):
    """Keeps the weights of the ``n`` epochs with the lowest finite validation loss."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.kept: list[tuple[float, int, list[np.ndarray]]] = []  # ascending loss

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        val_loss = float((logs or {})["val_loss"])
        if not np.isfinite(val_loss):
            return
        if len(self.kept) == self.n and val_loss >= self.kept[-1][0]:
            return
        losses = [loss for loss, _, _ in self.kept]
        self.kept.insert(
            bisect.bisect_right(losses, val_loss), (val_loss, epoch + 1, self.model.get_weights())
        )
        del self.kept[self.n :]


@dataclass(frozen=True)
class NeuralEnsemble(ScoreModel):
    """The kept epochs of one network and the standardisation of its inputs.

    Attributes:
        members: Per kept epoch, the network's weight arrays (lowest loss first).
        scaling: Standardisation fitted on the training inputs.
        hidden_units: Widths of the hidden layers.
        activation: Their activation.
        n_features: Input columns.
        summary: Settings, per-epoch losses, kept epochs and their losses.
    """

    kind: ClassVar[str] = "neural"
    members: list[list[np.ndarray]]
    scaling: Standardization
    hidden_units: list[int]
    activation: str
    n_features: int
    summary: dict[str, Any] = field(default_factory=dict)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        shape = NeuralEnsembleConfig(hidden_units=self.hidden_units, activation=self.activation)
        model = build_network(self.n_features, shape, seed=0)  # weights replaced below
        scaled = self.scaling.apply(x).astype(np.float32)
        total = np.zeros(len(x))
        for weights in self.members:
            model.set_weights(weights)
            total += model.predict(scaled, batch_size=_PREDICT_BATCH, verbose=0)[:, 0]
        return total / len(self.members)

    def _write(self, folder: Path) -> None:
        arrays = {
            f"member{i}_array{j}": array
            for i, weights in enumerate(self.members)
            for j, array in enumerate(weights)
        }
        with atomic_path(folder / _WEIGHTS_FILE) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        network = {
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "scaling": {"mean": self.scaling.mean, "std": self.scaling.std},
            "members": len(self.members),
            "arrays": len(self.members[0]),
        }
        write_json_atomic(folder / _NETWORK_FILE, network)

    @classmethod
    def _read(cls, folder: Path, meta: dict[str, Any]) -> NeuralEnsemble:
        try:
            network = json.loads((folder / _NETWORK_FILE).read_text(encoding="utf-8"))
            with np.load(folder / _WEIGHTS_FILE) as arrays:
                members = [
                    [arrays[f"member{i}_array{j}"] for j in range(network["arrays"])]
                    for i in range(network["members"])
                ]
        except (OSError, KeyError, ValueError) as err:
            raise DataError(f"{folder}: incomplete neural classifier ({err})") from None
        return cls(
            members=members,
            scaling=Standardization(**network["scaling"]),
            hidden_units=list(network["hidden_units"]),
            activation=network["activation"],
            n_features=int(meta["n_features"]),
            summary=meta["summary"],
        )


def train_neural_ensemble(
    train: Events, val: Events, cfg: NeuralEnsembleConfig, seed: int
) -> NeuralEnsemble:
    """Train the network of ``cfg`` for ``cfg.epochs`` epochs and keep its ``n_best`` epochs.

    Args:
        train: Checked inputs, labels and sample weights
            (:func:`~fedhex_hpc.classifiers.ensemble.check_events`).
        val: Checked validation events; their (balanced) weighted loss ranks the epochs.
        cfg: Network, training and ensemble settings.
        seed: Initial weights (stream ``classifier_init``) and per-epoch order
            (stream ``classifier_order``).

    Raises:
        ConfigError: ``n_best`` is larger than ``epochs``.
        TrainingError: No epoch had a finite validation loss.
    """
    if cfg.n_best > cfg.epochs:
        raise ConfigError(f"classifier n_best ({cfg.n_best}) must not exceed epochs ({cfg.epochs})")

    def weighted(events: Events) -> Events:
        x, y, w = events
        return x, y, balanced_weights(y, w) if cfg.balanced else w

    keeper = _KeepBestEpochs(cfg.n_best)
    _, scaling, history = fit_network(
        weighted(train),
        weighted(val),
        cfg,
        cfg.epochs,
        keeper,
        seed,
        shuffle_seed=derive_seed(seed, "classifier_order"),
    )
    if not keeper.kept:
        raise TrainingError("the classifier's validation loss was never finite")
    summary = {
        "config": dataclasses.asdict(cfg),
        "seed": seed,
        "history": history,
        "best_epochs": [epoch for _, epoch, _ in keeper.kept],
        "best_val_losses": [loss for loss, _, _ in keeper.kept],
        "n_train": len(train[0]),
        "n_val": len(val[0]),
    }
    return NeuralEnsemble(
        members=[weights for _, _, weights in keeper.kept],
        scaling=scaling,
        hidden_units=list(cfg.hidden_units),
        activation=cfg.activation,
        n_features=train[0].shape[1],
        summary=summary,
    )
