"""Classifiers that studies train on events.

:mod:`~fedhex_hpc.classifiers.config` holds the settings (importable without
TensorFlow), :mod:`~fedhex_hpc.classifiers.network` the dense Keras network with
early stopping and restore-best, :mod:`~fedhex_hpc.classifiers.ensemble` the
score models of anomaly detection (the neural epoch ensemble and the boosted-tree
ensemble) and :mod:`~fedhex_hpc.classifiers.features` their inputs. Importing this
package does not import TensorFlow; training or loading a ``neural`` model does.
"""

from __future__ import annotations

from fedhex_hpc.classifiers.config import (
    CLASSIFIER_KINDS,
    ENSEMBLE_CONFIGS,
    ClassifierConfig,
    NeuralEnsembleConfig,
    TreeEnsembleConfig,
    check_kind,
)
from fedhex_hpc.classifiers.ensemble import ScoreModel, train_classifier_ensemble
from fedhex_hpc.classifiers.features import classifier_inputs

__all__ = [
    "CLASSIFIER_KINDS",
    "ENSEMBLE_CONFIGS",
    "ClassifierConfig",
    "NeuralEnsembleConfig",
    "ScoreModel",
    "TreeEnsembleConfig",
    "check_kind",
    "classifier_inputs",
    "train_classifier_ensemble",
]
