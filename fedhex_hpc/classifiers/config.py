"""Settings of the classifiers (no TensorFlow here: specs are read on login nodes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fedhex_hpc.errors import ConfigError, suggest

__all__ = [
    "CLASSIFIER_KINDS",
    "ENSEMBLE_CONFIGS",
    "ClassifierConfig",
    "NeuralEnsembleConfig",
    "TreeEnsembleConfig",
    "check_kind",
]

Activation = Literal["relu", "tanh", "elu", "gelu", "silu"]


@dataclass
class ClassifierConfig:
    """Dense signal/background classifier and its training.

    ``patience`` epochs without a lower validation loss stop training (0: never
    stop early); the weights of the lowest validation loss are restored either way.
    """

    hidden_units: list[int] = field(default_factory=lambda: [512, 512], metadata={"min": 1})
    activation: Activation = "relu"
    learning_rate: float = field(default=1e-3, metadata={"min": 0, "exclusive": True})
    batch_size: int = field(default=1024, metadata={"min": 1})
    max_epochs: int = field(default=1000, metadata={"min": 1})
    patience: int = field(default=15, metadata={"min": 0})


@dataclass
class NeuralEnsembleConfig:
    """The epoch ensemble of one dense network (CATHODE's classifier).

    The network trains for ``epochs`` epochs without early stopping; the weights of
    the ``n_best`` epochs with the lowest weighted validation loss are kept and their
    predictions averaged. ``balanced`` multiplies the sample weights by class weights
    that give both classes the same total weight (in training and in validation).
    """

    hidden_units: list[int] = field(default_factory=lambda: [64, 64, 64], metadata={"min": 1})
    activation: Activation = "relu"
    learning_rate: float = field(default=1e-3, metadata={"min": 0, "exclusive": True})
    batch_size: int = field(default=128, metadata={"min": 1})
    epochs: int = field(default=100, metadata={"min": 1})
    n_best: int = field(default=10, metadata={"min": 1})
    balanced: bool = True


@dataclass
class TreeEnsembleConfig:
    """An averaged ensemble of boosted-tree classifiers ("Back to the Roots").

    Each of the ``n_models`` scikit-learn ``HistGradientBoostingClassifier`` fits on
    its own random part of the events and is early-stopped (``n_iter_no_change``
    iterations without a lower weighted log-loss) on the rest, a share
    ``stop_share`` of them; the fit never sees its stopping events and nothing is
    refitted afterwards. With ``pool_validation`` the training and validation
    events are pooled before the split (every event serves some models); otherwise
    only training events are split and the validation events just measure the
    ensemble. ``balanced`` as for the network. ``threads`` OpenMP threads build
    the trees.
    """

    n_models: int = field(default=50, metadata={"min": 1})
    max_iter: int = field(default=200, metadata={"min": 1})
    max_leaf_nodes: int = field(default=31, metadata={"min": 2})
    learning_rate: float = field(default=0.1, metadata={"min": 0, "exclusive": True})
    n_iter_no_change: int = field(default=10, metadata={"min": 1})
    stop_share: float = field(default=0.5, metadata={"min": 0, "exclusive": True})
    pool_validation: bool = True
    balanced: bool = True
    threads: int = field(default=1, metadata={"min": 1})


#: Classifier kind -> its settings class.
ENSEMBLE_CONFIGS: dict[str, type] = {"neural": NeuralEnsembleConfig, "trees": TreeEnsembleConfig}
CLASSIFIER_KINDS: tuple[str, ...] = tuple(ENSEMBLE_CONFIGS)


def check_kind(kind: str, where: str = "classifier") -> str:
    """Return ``kind`` if it is one of :data:`CLASSIFIER_KINDS`.

    Raises:
        ConfigError: Another name; the message names ``where`` and lists the kinds.
    """
    if kind not in CLASSIFIER_KINDS:
        raise ConfigError(
            f"{where}: unknown classifier kind {kind!r}{suggest(str(kind), CLASSIFIER_KINDS)}; "
            f"kinds: {', '.join(CLASSIFIER_KINDS)}"
        )
    return kind
