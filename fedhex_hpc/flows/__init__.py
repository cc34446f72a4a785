"""Normalizing flows: MADE network, (conditional) MAF, preprocessing, save/load."""

from __future__ import annotations

from fedhex_hpc.flows.build import build_flow
from fedhex_hpc.flows.export import export_saved_model
from fedhex_hpc.flows.io import load_flow, save_flow
from fedhex_hpc.flows.made import ACTIVATIONS, MADE, made_masks
from fedhex_hpc.flows.maf import LOG_PROB_BATCH, SAMPLE_BATCH, FlowModel, FlowSpec
from fedhex_hpc.flows.preprocessing import (
    PREPROCESSING_KINDS,
    Preprocessing,
    Standardization,
    fit_preprocessing,
)

__all__ = [
    "ACTIVATIONS",
    "LOG_PROB_BATCH",
    "MADE",
    "PREPROCESSING_KINDS",
    "SAMPLE_BATCH",
    "FlowModel",
    "FlowSpec",
    "Preprocessing",
    "Standardization",
    "build_flow",
    "export_saved_model",
    "fit_preprocessing",
    "load_flow",
    "made_masks",
    "save_flow",
]
