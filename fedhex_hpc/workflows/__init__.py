"""End-to-end steps the CLI and job scripts call: train, sample, evaluate a run."""

from __future__ import annotations

from fedhex_hpc.workflows.evaluate import evaluate_run
from fedhex_hpc.workflows.sample import dataset_conditions, draw_samples, sample_run
from fedhex_hpc.workflows.train import build_flow, train_run

__all__ = [
    "build_flow",
    "dataset_conditions",
    "draw_samples",
    "evaluate_run",
    "sample_run",
    "train_run",
]
