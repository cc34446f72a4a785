"""Batch-norm statistics set by one full pass over the training set (CATHODE's recipe).

With ``flow.batch_norm_stats: epoch_pass`` the running statistics of the batch-norm
layers stay frozen while an epoch trains (each batch is still normalised with its own
statistics), and after the epoch every layer's running mean and variance become the
mean and (population) variance of its inputs over the whole training set, the layers
before it already using their new statistics. That is what one training-mode pass of
the whole set in a single batch gives, computed here in bounded batches: the
intermediate events (n, d) are kept, one block after the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from fedhex_hpc._tf import tf
from fedhex_hpc.flows.maf import LOG_PROB_BATCH, FlowModel

__all__ = ["freeze_batch_norm", "set_batch_norm_statistics"]


def freeze_batch_norm(model: FlowModel) -> None:
    """Stop training steps from updating the running statistics (momentum 1).

    Call it before the training step is traced: the momentum is read at tracing time.
    """
    for layer in model.batch_norms:
        layer.momentum = 1.0


def _moments(
    z: np.ndarray, reduce: Callable[[list[float]], list[float]]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population variance of the rows of ``z`` over every rank (float64)."""
    z64 = z.astype(np.float64)
    d = z.shape[1]
    sums = reduce([float(len(z)), *z64.sum(axis=0), *np.einsum("ij,ij->j", z64, z64)])
    count, total, squares = sums[0], np.asarray(sums[1 : 1 + d]), np.asarray(sums[1 + d :])
    if count <= 0:
        raise ValueError("no training events to set the batch-norm statistics from")
    mean = total / count
    return mean, np.maximum(squares / count - mean**2, 0.0)


def set_batch_norm_statistics(
    model: FlowModel,
    batches: Iterable[tuple[np.ndarray, np.ndarray | None]],
    reduce: Callable[[list[float]], list[float]] = lambda values: values,
    batch_size: int = LOG_PROB_BATCH,
) -> None:
    """Set every batch-norm layer's running mean and variance from the training set.

    Args:
        model: A flow with batch norm (without, nothing happens).
        batches: This process's training events as (x, cond) pairs, cond ``None`` for
            an unconditional flow; events outside the flow's domain are skipped.
        reduce: Sums a list of floats over data-parallel ranks (identity for one).
        batch_size: Events per call of a block.

    Raises:
        ValueError: there are no training events (on any rank).
    """
    if not model.batch_norms:
        return
    xs, conds = [], []
    for x, cond in batches:
        x = np.asarray(x, np.float32)
        inside = model.in_domain(x).numpy()
        xs.append(x[inside])
        conds.append(None if cond is None else np.asarray(cond, np.float32)[inside])
    z = np.concatenate(xs) if xs else np.zeros((0, model.spec.n_features), np.float32)
    cond_all = None if not conds or conds[0] is None else np.concatenate(conds)

    def blockwise(fn: Callable[[tf.Tensor, tf.Tensor | None], tf.Tensor]) -> np.ndarray:
        parts = [np.zeros((0, z.shape[1]), np.float32)]
        for start in range(0, len(z), batch_size):
            c = None if cond_all is None else tf.constant(cond_all[start : start + batch_size])
            parts.append(fn(tf.constant(z[start : start + batch_size]), c).numpy())
        return np.concatenate(parts)

    def preprocess(x: tf.Tensor, _: tf.Tensor | None) -> tf.Tensor:
        for bijector in model.spec.preprocessing.bijectors():
            x = bijector.inverse(x)
        return x

    z = blockwise(preprocess)
    for i, made in enumerate(model.mades[:-1]):

        def block(x: tf.Tensor, cond: tf.Tensor | None, made=made) -> tf.Tensor:
            return model._invert_block(made, x, model._normalised_cond(cond))[0]

        z = blockwise(block)
        layer = model.batch_norms[i]
        mean, variance = _moments(z, reduce)
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(variance.astype(np.float32))

        def between(x: tf.Tensor, _: tf.Tensor | None, i=i) -> tf.Tensor:
            for bijector in model._between_blocks(i, training=False):
                x = bijector.inverse(x)
            return x

        z = blockwise(between)
