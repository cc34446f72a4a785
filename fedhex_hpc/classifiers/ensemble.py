"""Score models: the classifier ensembles anomaly detection trains, saved and loaded.

:func:`train_classifier_ensemble` trains a kind of :data:`CLASSIFIER_KINDS` on
weighted labelled events (label 1 = the class the score should favour, e.g. data
against a background template). The result is a :class:`ScoreModel`: ``score``
gives the averaged signal probability (higher = more signal-like), ``save``
writes a folder atomically and :meth:`ScoreModel.load` reads any kind back.
"""

from __future__ import annotations

import abc
import importlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fedhex_hpc.classifiers.config import ENSEMBLE_CONFIGS, check_kind
from fedhex_hpc.errors import ConfigError, DataError
from fedhex_hpc.io_utils import atomic_directory, write_json_atomic

__all__ = [
    "MODEL_FILE",
    "ScoreModel",
    "balanced_weights",
    "check_events",
    "train_classifier_ensemble",
]

#: The file naming a saved score model's kind, inputs and training summary.
MODEL_FILE = "model.json"

#: Kind -> "module:class" of its score model (imported on use: only ``neural`` needs TensorFlow).
_IMPLEMENTATIONS = {
    "neural": "fedhex_hpc.classifiers.neural_ensemble:NeuralEnsemble",
    "trees": "fedhex_hpc.classifiers.tree_ensemble:TreeEnsemble",
}


class ScoreModel(abc.ABC):
    """A trained classifier ensemble that scores events.

    Attributes:
        kind: One of :data:`CLASSIFIER_KINDS`.
        n_features: Input columns the model expects.
        summary: JSON-ready record of the training (settings, losses, epochs or
            iterations per member).
    """

    kind: ClassVar[str]
    n_features: int
    summary: dict[str, Any]

    @abc.abstractmethod
    def _predict(self, x: np.ndarray) -> np.ndarray:
        """Averaged signal probability of checked inputs ``x``."""

    @abc.abstractmethod
    def _write(self, folder: Path) -> None:
        """Write the members into the (temporary) ``folder``."""

    @classmethod
    @abc.abstractmethod
    def _read(cls, folder: Path, meta: dict[str, Any]) -> ScoreModel:
        """The model saved in ``folder`` whose :data:`MODEL_FILE` holds ``meta``."""

    def score(self, x: np.ndarray) -> np.ndarray:
        """Score of every row of ``x`` ``(n, n_features)``: higher = more signal-like.

        Raises:
            DataError: ``x`` is not 2-d with ``n_features`` columns or not finite.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise DataError(
                f"classifier inputs: expected shape (n, {self.n_features}), got {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise DataError("classifier inputs: expected only finite values")
        return self._predict(x).astype(np.float64)

    def save(self, folder: str | Path) -> Path:
        """Write the model to ``folder`` atomically (an existing one is replaced whole)."""
        folder = Path(folder)
        with atomic_directory(folder) as tmp:
            self._write(tmp)
            meta = {"kind": self.kind, "n_features": self.n_features, "summary": self.summary}
            write_json_atomic(tmp / MODEL_FILE, meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ScoreModel:
        """The score model saved in ``folder``, of whichever kind it is.

        Tree models are pickled scikit-learn objects: load only folders you trust.

        Raises:
            DataError: ``folder`` holds no readable score model.
        """
        path = Path(folder) / MODEL_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            kind = meta["kind"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a saved classifier ({err})") from None
        if kind not in _IMPLEMENTATIONS:
            raise DataError(f"{path}: unknown classifier kind {kind!r}")
        module, name = _IMPLEMENTATIONS[kind].split(":")
        implementation = getattr(importlib.import_module(module), name)
        return implementation._read(Path(folder), meta)


def balanced_weights(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Sample weights times class weights that give both classes half the total weight.

    With unit sample weights this is scikit-learn's ``class_weight="balanced"``:
    ``n / (2 n_c)`` for an event of class ``c``.
    """
    total = float(np.sum(w))
    out = np.empty_like(w, dtype=np.float64)
    for label in (0, 1):
        mine = y == label
        out[mine] = w[mine] * (total / (2.0 * float(np.sum(w[mine]))))
    return out


def check_events(
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, labels and weights as float64/int arrays, checked.

    Args:
        x: Inputs ``(n, d)``.
        y: Labels ``(n,)`` in {0, 1}, both present.
        w: Non-negative sample weights ``(n,)`` with a positive sum per class, or None
            (unit weights).
        name: Names the events in errors (``train``, ``val``).

    Raises:
        DataError: Any of these does not hold; the message names ``name``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or x.shape[1] == 0:
        raise DataError(f"{name} inputs: expected a non-empty (n, d) array, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{name} inputs: expected only finite values")
    y = np.asarray(y)
    if y.shape != (len(x),) or not np.all(np.isin(y, (0, 1))):
        raise DataError(f"{name} labels: expected {len(x)} labels of 0 or 1, got shape {y.shape}")
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64)
    if w.shape != (len(x),) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DataError(f"{name} weights: expected {len(x)} finite non-negative weights")
    for label in (0, 1):
        if not np.sum(w[y == label]) > 0:
            raise DataError(f"{name}: class {label} has no events (or zero total weight)")
    return x, y.astype(np.int64), w


def train_classifier_ensemble(
    kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    w_train: np.ndarray | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    w_val: np.ndarray | None,
    config: Any,
    seed: int,
) -> ScoreModel:
    """Train a classifier ensemble of ``kind`` on weighted labelled events.

    Args:
        kind: One of :data:`CLASSIFIER_KINDS` (``neural``, ``trees``).
        x_train: Training inputs ``(n, d)``.
        y_train: Training labels ``(n,)``, 1 for the class to score high.
        w_train: Training sample weights ``(n,)`` or None for unit weights.
        x_val: Validation inputs ``(m, d)``.
        y_val: Validation labels ``(m,)``.
        w_val: Validation sample weights ``(m,)`` or None.
        config: The kind's settings (:class:`NeuralEnsembleConfig` or
            :class:`TreeEnsembleConfig`), or None for their defaults.
        seed: Seeds every random draw of the training (named streams).

    Returns:
        The trained :class:`ScoreModel`.

    Raises:
        ConfigError: An unknown kind, or settings of another kind.
        DataError: Malformed events (:func:`check_events`), or validation inputs
            with another number of columns.
    """
    check_kind(kind)
    expected = ENSEMBLE_CONFIGS[kind]
    config = expected() if config is None else config
    if not isinstance(config, expected):
        raise ConfigError(
            f"classifier {kind!r} needs a {expected.__name__}, got {type(config).__name__}"
        )
    train = check_events(x_train, y_train, w_train, "train")
    val = check_events(x_val, y_val, w_val, "val")
    if val[0].shape[1] != train[0].shape[1]:
        raise DataError(
            f"val inputs: expected {train[0].shape[1]} columns (as train), got {val[0].shape[1]}"
        )
    if kind == "neural":
        from fedhex_hpc.classifiers.neural_ensemble import train_neural_ensemble

        return train_neural_ensemble(train, val, config, seed)
    from fedhex_hpc.classifiers.tree_ensemble import train_tree_ensemble

    return train_tree_ensemble(train, val, config, seed)
