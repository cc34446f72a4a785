"""Every random stream of a run, named in one table and derived from ``run.seed``.

A stream is the run seed plus the stream's id (and, where a stream repeats, the
epoch, the partition or the block index), mixed by numpy's ``SeedSequence``. No
two streams share an id, so no two draws of a run are correlated; a test checks
the table.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STREAMS", "derive_seed", "rng"]

#: Stream name -> id. Add a row for a new random draw; never reuse an id.
STREAMS: dict[str, int] = {
    # data
    "target_train": 0,  # training events drawn from a known target
    "target_val": 1,
    "target_test": 2,
    "file_split": 11,  # train/val/test assignment of the rows of a file
    "event_split": 12,  # per partition: train/val/test assignment of a converted dataset
    "batch_order": 21,  # per epoch: in-memory training order
    "shard_order": 22,  # per epoch: streamed shards' order
    "shuffle_buffer": 23,  # per epoch: streamed events' shuffle
    # flows
    "flow_permutations": 31,  # random permutations between MADE blocks
    "made_init": 32,  # per block and layer: MADE weight initialisation
    # evaluation
    "kl_samples": 41,  # target events for KL(target || model)
    "generated": 42,  # flow events compared with the test split
    "closure_bootstrap": 43,  # bootstrap of a closure test's AUC
    # classifiers and studies
    "classifier_init": 51,  # per layer: dense classifier initialisation
    "classifier_order": 52,  # neural ensemble: per-epoch training order
    "classifier_noise": 53,  # per part: Gaussian-noise input columns
    "tree_split": 54,  # per tree model: its fit and early-stopping events
    "tree_init": 55,  # per tree model: the boosting's random state
    "mixlearn_pools": 101,  # per class and pool: synthetic events
    "mixlearn_subsets": 102,  # per model and part: event subsets of a plan row
    "mixlearn_classifier": 103,  # per model: the row's classifier
    "interp_train": 141,  # per label point: a target's training events
    "interp_truth": 142,  # per label point: a target's truth events
    "interp_generated": 143,  # per fold and point: flow events at a judged point
    "interp_bootstrap": 144,  # per fold, point and method: bootstrap of the shifts
    "interp_auc": 145,  # per fold, point and method: classifier and permutations
    "root_grid": 151,  # per mass point: synthetic FEDHEX-like ROOT events
    "lhco_flow": 171,  # per (seed, n_signal) group and flow (outer, inner): its run seed
    "lhco_template": 172,  # per group: template mjj and flow samples, and their parts
    "lhco_task": 173,  # per task: its classifier, noise inputs and closure bootstrap
    "lhco_extra": 152,  # synthetic extra signal-region LHCO background
    "lhco_prepare": 153,  # per pool: shuffles of the weak-supervision splits
    "template_mjj": 161,  # per block of a background template: its mjj from the KDE
    "template_flow": 162,  # per block of a background template: the flow's draw
    "toys": 111,  # per truth point and toy: event count and events of a pseudo-experiment
}


def _entropy(seed: int, stream: str, more: tuple[int, ...]) -> list[int]:
    return [int(seed), STREAMS[stream], *(int(m) for m in more)]


def derive_seed(seed: int, stream: str, *more: int) -> int:
    """A 63-bit seed for ``stream`` (and ``more``, e.g. an epoch) of a run seeded with ``seed``."""
    state = np.random.SeedSequence(_entropy(seed, stream, more)).generate_state(2, np.uint64)
    return int(state[0] >> 1)


def rng(seed: int, stream: str, *more: int) -> np.random.Generator:
    """A numpy generator for ``stream`` (and ``more``) of a run seeded with ``seed``."""
    return np.random.default_rng(_entropy(seed, stream, more))
