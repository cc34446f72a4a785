"""The ANODE configuration every benchmark measures: 4 features + 1 condition,
15 MADE blocks of 2 x 128 ReLU units, reverse permutations, bounded log-scale."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fedhex_hpc._tf import tf
from fedhex_hpc.flows import FlowModel, FlowSpec, Standardization, fit_preprocessing
from fedhex_hpc.train import build_train_step

__all__ = ["CONDITIONS", "FEATURES", "anode_flow", "anode_step", "lhco_like"]

FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
CONDITIONS = ["mjj"]


def lhco_like(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 features and mjj values; the values do not change the cost."""
    x = rng.standard_normal((n, len(FEATURES))).astype(np.float32)
    c = rng.uniform(3.0, 4.0, (n, len(CONDITIONS))).astype(np.float32)
    return x, c


def anode_flow(rng: np.random.Generator) -> FlowModel:
    """The ANODE flow with preprocessing fitted on :func:`lhco_like` numbers."""
    x, c = lhco_like(rng, 10_000)
    spec = FlowSpec(
        n_features=len(FEATURES),
        n_conditions=len(CONDITIONS),
        n_blocks=15,
        hidden_units=[128, 128],
        activation="relu",
        permutation="reverse",
        log_scale_bound=3.0,
        batch_norm=False,
        seed=1,
        preprocessing=fit_preprocessing(x, "standardize"),
        condition_scaling=Standardization.fit(c),
        feature_names=FEATURES,
        condition_names=CONDITIONS,
    )
    return FlowModel(spec)


def anode_step(
    model: FlowModel,
    jit_compile: bool = False,
    wrap_tape: Callable[[tf.GradientTape], tf.GradientTape] | None = None,
) -> tuple[Callable, tf.keras.optimizers.Optimizer]:
    """The package's compiled training step for ``model`` and its Adam optimizer."""
    optimizer = tf.keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    step = build_train_step(model, optimizer, jit_compile=jit_compile, wrap_tape=wrap_tape)
    return step, optimizer
