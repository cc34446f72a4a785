"""Settings of the dense classifier (no TensorFlow here: specs are read on login nodes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ClassifierConfig"]


@dataclass
class ClassifierConfig:
    """Dense signal/background classifier and its training.

    ``patience`` epochs without a lower validation loss stop training (0: never
    stop early); the weights of the lowest validation loss are restored either way.
    """

    hidden_units: list[int] = field(default_factory=lambda: [512, 512], metadata={"min": 1})
    activation: Literal["relu", "tanh", "elu", "gelu", "silu"] = "relu"
    learning_rate: float = field(default=1e-3, metadata={"min": 0, "exclusive": True})
    batch_size: int = field(default=1024, metadata={"min": 1})
    max_epochs: int = field(default=1000, metadata={"min": 1})
    patience: int = field(default=15, metadata={"min": 0})
