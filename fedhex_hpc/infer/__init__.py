"""Parameter inference with conditional flows: unbinned likelihoods, Minuit fits, scans, toys.

:mod:`.model` reads a model spec into processes and parameters, :mod:`.density`
evaluates flows and exact targets for many parameter points at once,
:mod:`.nll` turns them into ``−2 ln L`` (``errordef = 1``) with gradients,
:mod:`.fit` runs MIGRAD, HESSE and MINOS, :mod:`.scan` profile scans and
:mod:`.toys` pseudo-experiments. :mod:`.run` holds what the CLI calls.
"""

from __future__ import annotations

from fedhex_hpc.infer.fit import CONVENTION, fit
from fedhex_hpc.infer.model import LikelihoodModel, build_model, load_model_spec
from fedhex_hpc.infer.nll import NLL, load_events
from fedhex_hpc.infer.scan import scan_1d, scan_2d

__all__ = [
    "CONVENTION",
    "NLL",
    "LikelihoodModel",
    "build_model",
    "fit",
    "load_events",
    "load_model_spec",
    "scan_1d",
    "scan_2d",
]
