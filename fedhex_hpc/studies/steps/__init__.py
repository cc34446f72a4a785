"""The steps of one run that the CLI, job scripts and every study kind call: train (or
finish training), sample, evaluate."""

from __future__ import annotations

from fedhex_hpc.studies.steps.evaluate import evaluate_run
from fedhex_hpc.studies.steps.sample import dataset_conditions, draw_samples, sample_run
from fedhex_hpc.studies.steps.train import ensure_trained, new_flow, train_run

__all__ = [
    "dataset_conditions",
    "draw_samples",
    "ensure_trained",
    "evaluate_run",
    "new_flow",
    "sample_run",
    "train_run",
]
