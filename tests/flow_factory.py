"""Small flows of every variant for the flow tests."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fedhex_hpc.flows import (
    PREPROCESSING_KINDS,
    FlowModel,
    FlowSpec,
    Standardization,
    fit_preprocessing,
)

__all__ = ["PART_CASES", "VARIANTS", "make_flow", "randomise", "variant_id"]

#: (n_conditions, batch_norm, preprocessing, permutation, transform) of every flow variant:
#: every affine combination, and the spline blocks with each conditioning, batch norm and
#: bounded or unbounded preprocessing.
VARIANTS = [
    *itertools.product(
        (0, 1), (False, True), PREPROCESSING_KINDS, ("reverse", "random"), ("affine",)
    ),
    *itertools.product((0, 1), (False, True), ("standardize", "logit"), ("random",), ("spline",)),
]


def variant_id(variant: tuple) -> str:
    """Readable pytest id of one entry of :data:`VARIANTS`."""
    n_conditions, batch_norm, preprocessing, permutation, transform = variant
    return "-".join(
        [
            "cond" if n_conditions else "uncond",
            "bn" if batch_norm else "nobn",
            preprocessing,
            permutation,
            *([transform] if transform != "affine" else []),
        ]
    )


#: (variant, row parts) with readable ids: every variant in one part, and in three parts
#: each conditioning, batch norm and transform (the parts are cut after the preprocessing).
PART_CASES = [pytest.param(v, 1, id=variant_id(v)) for v in VARIANTS] + [
    pytest.param(v, 3, id=variant_id(v) + "-3parts")
    for v in VARIANTS
    if v[2] == "standardize" and v[3] == "random"
]


def make_flow(
    preprocessing="standardize",
    n_conditions=0,
    batch_norm=False,
    seed=3,
    n_features=3,
    identity_init=False,
    permutation="random",
    n_blocks=3,
    transform="affine",
    activation="relu",
    hidden_units=(16, 16),
):
    """A small flow with preprocessing fitted on 500 Gaussian events, and those events."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(500, n_features)) * [1.0, 2.0, 0.5][:n_features] + 1.0
    c = rng.uniform(3, 4, size=(500, n_conditions))
    spec = FlowSpec(
        n_features=n_features,
        n_conditions=n_conditions,
        n_blocks=n_blocks,
        hidden_units=list(hidden_units),
        activation=activation,
        permutation=permutation,
        log_scale_bound=3.0,
        batch_norm=batch_norm,
        seed=seed,
        preprocessing=fit_preprocessing(x, preprocessing),
        condition_scaling=Standardization.fit(c) if n_conditions else Standardization.identity(0),
        identity_init=identity_init,
        transform=transform,
        spline_bins=5,
        spline_range=4.0,
    )
    return FlowModel(spec), x.astype(np.float32), c.astype(np.float32) if n_conditions else None


def randomise(model: FlowModel, scale: float = 0.3, seed: int = 0) -> None:
    """Give the output layers (and batch norms) random values so no block is the identity."""
    rng = np.random.default_rng(seed)
    for made in model.mades:
        for var in (made.out_kernel, made.out_bias):
            var.assign(rng.normal(scale=scale, size=var.shape).astype(np.float32))
    for layer in model.batch_norms:
        n = model.spec.n_features
        layer.gamma.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))
        layer.beta.assign(rng.normal(scale=0.5, size=n).astype(np.float32))
        layer.moving_mean.assign(rng.normal(scale=0.5, size=n).astype(np.float32))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))
