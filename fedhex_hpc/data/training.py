"""Assemble what training needs from any data source: a batch source for this rank,
the validation events, a sample for fitting preprocessing, and the column names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhex_hpc.config import DataConfig
from fedhex_hpc.data.arrays import Arrays, check_finite, load_splits
from fedhex_hpc.data.batches import SINGLE_PROCESS, BatchSource, InMemoryBatches, RankInfo
from fedhex_hpc.data.dataset import DatasetView, ShardStream

__all__ = ["PREPROCESSING_SAMPLE", "TrainingData", "load_test_split", "load_training_data"]

#: Events a streamed training split contributes to fitting the preprocessing.
PREPROCESSING_SAMPLE = 1_000_000


@dataclass(frozen=True)
class TrainingData:
    """Inputs of one training process."""

    train: BatchSource
    val: Arrays
    fit_sample: Arrays
    feature_names: list[str]
    condition_names: list[str]
    weight_mean: float


def _weight_mean(arrays: Arrays) -> float:
    return 1.0 if arrays.weight is None else float(np.mean(arrays.weight))


def _stream_sample(stream: ShardStream) -> Arrays:
    parts, n = [], 0
    for chunk in stream.view.chunks(stream.split):
        parts.append(chunk)
        n += len(chunk)
        if n >= PREPROCESSING_SAMPLE:
            break
    return Arrays.concat(parts)


def load_training_data(
    cfg: DataConfig,
    seed: int,
    batch_size: int,
    shuffle: bool = True,
    ranks: RankInfo = SINGLE_PROCESS,
) -> TrainingData:
    """Training and validation data for this rank, as ``cfg`` describes them."""
    if cfg.source != "dataset":
        splits = load_splits(cfg, seed)
        for name, split in (("training", splits.train), ("validation", splits.val)):
            check_finite(split.x, f"{name} features")
        return TrainingData(
            InMemoryBatches(splits.train, batch_size, seed, shuffle, ranks),
            splits.val,
            splits.train,
            splits.feature_names,
            splits.condition_names,
            _weight_mean(splits.train),
        )
    view = DatasetView(cfg)
    if view.fits_in_memory("train"):
        train_arrays = view.load("train")
        train: BatchSource = InMemoryBatches(train_arrays, batch_size, seed, shuffle, ranks)
        fit_sample = train_arrays
    else:
        stream = ShardStream(view, "train", batch_size, seed, cfg.shuffle_buffer, ranks)
        train, fit_sample = stream, _stream_sample(stream)
    return TrainingData(
        train,
        view.load("val"),
        fit_sample,
        view.features,
        view.conditions,
        _weight_mean(fit_sample),
    )


def load_test_split(cfg: DataConfig, seed: int) -> Arrays:
    """The test events of a data config (in memory)."""
    if cfg.source != "dataset":
        return load_splits(cfg, seed).test
    return DatasetView(cfg).load("test")
