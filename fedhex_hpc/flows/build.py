"""A fresh flow from a training config: the spec, with preprocessing fitted on the data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedhex_hpc.config import FlowConfig
from fedhex_hpc.flows.maf import FlowModel, FlowSpec
from fedhex_hpc.flows.preprocessing import Standardization, fit_preprocessing

__all__ = ["build_flow"]


def build_flow(
    flow: FlowConfig,
    seed: int,
    x: np.ndarray,
    cond: np.ndarray | None,
    feature_names: Sequence[str],
    condition_names: Sequence[str] = (),
) -> FlowModel:
    """A new flow of architecture ``flow`` whose preprocessing is fitted on ``x`` and ``cond``.

    Args:
        flow: The ``flow`` section of a training config.
        seed: The run seed (initialisation and random permutations derive from it).
        x: Training events (or a sample of them), (n, d).
        cond: Their conditions (n, c), or ``None`` for an unconditional flow.
        feature_names, condition_names: Column names, saved with the model.
    """
    cond_scaling = Standardization.fit(cond) if cond is not None else Standardization.identity(0)
    spec = FlowSpec(
        n_features=x.shape[1],
        n_conditions=0 if cond is None else cond.shape[1],
        n_blocks=flow.n_blocks,
        hidden_units=list(flow.hidden_units),
        activation=flow.activation,
        permutation=flow.permutation,
        log_scale_bound=flow.log_scale_bound,
        batch_norm=flow.batch_norm,
        seed=seed,
        preprocessing=fit_preprocessing(x, flow.preprocessing, flow.logit_alpha),
        condition_scaling=cond_scaling,
        feature_names=list(feature_names),
        condition_names=list(condition_names),
        identity_init=flow.identity_init,
        transform=flow.transform,
        spline_bins=flow.spline_bins,
        spline_range=flow.spline_range,
    )
    return FlowModel(spec)
