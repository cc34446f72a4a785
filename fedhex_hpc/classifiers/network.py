"""A dense binary classifier trained with early stopping and restore-best.

Inputs are standardised with the training set's mean and standard deviation. The
network is ``hidden_units`` dense layers with ``activation`` and one sigmoid
output, trained with Adam on the binary cross-entropy. Training runs at most
``max_epochs`` epochs and stops after ``patience`` epochs without a lower
validation loss; at the end the weights of the lowest validation loss are
restored, whether training stopped early or reached ``max_epochs``.

:func:`build_network` and :func:`fit_network` are the one network builder and
training loop; the neural epoch ensemble
(:mod:`~fedhex_hpc.classifiers.neural_ensemble`) trains through them too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhex_hpc._tf import tf
from fedhex_hpc.classifiers.config import ClassifierConfig, NeuralEnsembleConfig
from fedhex_hpc.errors import TrainingError
from fedhex_hpc.flows import Standardization
from fedhex_hpc.seeding import derive_seed

__all__ = [
    "Classifier",
    "build_network",
    "classification_metrics",
    "fit_network",
    "train_classifier",
]


class _RestoreBest(tf.keras.callbacks.Callback):
    """Keeps the weights of the lowest validation loss, stops after ``patience`` worse epochs,
    and puts the kept weights back when training ends for any reason."""

    def __init__(self, patience: int) -> None:
        super().__init__()
        self.patience = patience
        self.best = np.inf
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None
        self.wait = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        val_loss = float((logs or {})["val_loss"])
        if val_loss < self.best:
            self.best, self.best_epoch, self.wait = val_loss, epoch + 1, 0
            self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.patience and self.wait >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is None:
            raise TrainingError("the classifier's validation loss was never finite")
        self.model.set_weights(self.best_weights)


@dataclass(frozen=True)
class Classifier:
    """A trained classifier with its input scaling and training record.

    Attributes:
        model: The Keras network (best-validation weights).
        scaling: Standardisation fitted on the training inputs.
        history: Per epoch ``loss`` and ``val_loss`` lists.
        epochs: Epochs actually run.
        best_epoch: The 1-based epoch whose weights the model holds.
        best_val_loss: Its validation loss.
    """

    model: tf.keras.Model
    scaling: Standardization
    history: dict[str, list[float]]
    epochs: int
    best_epoch: int
    best_val_loss: float

    def predict(self, x: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        """Signal probability of every row of ``x``."""
        scaled = self.scaling.apply(x).astype(np.float32)
        return self.model.predict(scaled, batch_size=batch_size, verbose=0)[:, 0]


def build_network(
    n_features: int, cfg: ClassifierConfig | NeuralEnsembleConfig, seed: int
) -> tf.keras.Model:
    """The compiled dense network of ``cfg`` (hidden layers, one sigmoid output).

    Layer ``i`` is initialised with the stream ``classifier_init`` of ``seed`` and
    ``i``; the network trains with Adam at ``cfg.learning_rate`` on the binary
    cross-entropy.
    """
    units = [*cfg.hidden_units, 1]
    activations = [cfg.activation] * len(cfg.hidden_units) + ["sigmoid"]
    layers = [tf.keras.Input(shape=(n_features,))]
    for i, (width, activation) in enumerate(zip(units, activations, strict=True)):
        init = tf.keras.initializers.GlorotUniform(
            seed=derive_seed(seed, "classifier_init", i) % 2**31
        )
        layers.append(tf.keras.layers.Dense(width, activation, kernel_initializer=init))
    model = tf.keras.Sequential(layers)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss=tf.keras.losses.BinaryCrossentropy(),
    )
    return model


Events = tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]


def fit_network(
    train: Events,
    val: Events,
    cfg: ClassifierConfig | NeuralEnsembleConfig,
    epochs: int,
    callback: tf.keras.callbacks.Callback,
    seed: int,
    shuffle_seed: int,
) -> tuple[tf.keras.Model, Standardization, dict[str, list[float]]]:
    """Standardise, build and train a network of ``cfg`` for at most ``epochs`` epochs.

    Args:
        train: Inputs ``(n, d)``, labels ``(n,)`` and optionally sample weights ``(n,)``.
        val: Validation inputs, labels and optionally weights (the validation loss
            is weighted by them).
        cfg: Network and batch size.
        epochs: Epochs at most (``callback`` may stop earlier).
        callback: Watches the epochs (keeps weights, stops training).
        seed: Initial weights (:func:`build_network`).
        shuffle_seed: TensorFlow's global seed: the per-epoch shuffling.

    Returns:
        The network as training left it, the standardisation of the training inputs
        and the per-epoch ``loss`` and ``val_loss``.
    """
    scaling = Standardization.fit(train[0])

    def arrays(events: Events) -> tuple[np.ndarray, ...]:
        x, *rest = events
        return (scaling.apply(x).astype(np.float32), *(a.astype(np.float32) for a in rest))

    tf.keras.backend.clear_session()  # many rows in one process do not pile up graphs
    tf.random.set_seed(shuffle_seed % 2**31)
    model = build_network(train[0].shape[1], cfg, seed)
    x, y, *w = arrays(train)
    fit = model.fit(
        x,
        y,
        sample_weight=w[0] if w else None,
        validation_data=arrays(val),
        batch_size=cfg.batch_size,
        epochs=epochs,
        shuffle=True,
        callbacks=[callback],
        verbose=0,
    )
    history = {k: [float(v) for v in fit.history[k]] for k in ("loss", "val_loss")}
    return model, scaling, history


def train_classifier(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    cfg: ClassifierConfig,
    seed: int,
) -> Classifier:
    """Train a classifier on ``train`` with early stopping on ``val``.

    Args:
        train: Inputs ``(n, d)`` and labels ``(n,)`` (1 = signal, 0 = noise).
        val: Validation inputs and labels.
        cfg: Network and training settings.
        seed: Fixes the initial weights and the per-epoch shuffling.

    Returns:
        The classifier holding the weights of its lowest validation loss.

    Raises:
        TrainingError: The validation loss was never finite.
    """
    keeper = _RestoreBest(cfg.patience)
    model, scaling, history = fit_network(
        train, val, cfg, cfg.max_epochs, keeper, seed, shuffle_seed=seed
    )
    return Classifier(model, scaling, history, len(history["loss"]), keeper.best_epoch, keeper.best)


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | int]:
    """Accuracy, mean binary cross-entropy and confusion counts of probabilities ``p``.

    An event is predicted signal when ``p > 0.5``. ``tsig``/``fnoise`` count true
    signal events predicted signal/noise, ``tnoise``/``fsig`` true noise events
    predicted noise/signal.
    """
    truth = y.astype(bool)
    signal = p > 0.5
    counts = {
        "tsig": int((truth & signal).sum()),
        "fnoise": int((truth & ~signal).sum()),
        "tnoise": int((~truth & ~signal).sum()),
        "fsig": int((~truth & signal).sum()),
    }
    loss = tf.keras.losses.BinaryCrossentropy()(y.astype(np.float32), p.astype(np.float32))
    return {
        "accuracy": (counts["tsig"] + counts["tnoise"]) / len(y),
        "loss": float(loss.numpy()),
        **counts,
    }
