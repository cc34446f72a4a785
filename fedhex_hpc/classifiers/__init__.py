"""Classifiers that studies train on events.

:mod:`~fedhex_hpc.classifiers.config` holds the settings (importable without
TensorFlow), :mod:`~fedhex_hpc.classifiers.network` the dense Keras network with
early stopping and restore-best.
"""

from __future__ import annotations

from fedhex_hpc.classifiers.config import ClassifierConfig

__all__ = ["ClassifierConfig"]
