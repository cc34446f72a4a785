"""The loss and gradient of a batch computed in row parts, a few at a time.

On a CPU the trainer cuts each batch into one row part per thread
(:attr:`FlowModel.shards <fedhex_hpc.flows.FlowModel.shards>`), and the parts run
side by side. A large batch gives each thread a part whose activations outgrow the
core's cache, so the backward pass streams them from memory. Here each thread's
rows (a lane) are cut again into parts of about :func:`part_elements` activations
per hidden layer (half as many on cores with 1 MiB of L2 or more), and the lane
computes them one after another, each with its own tape: the gradient of a part is
summed before the next part starts, so a part's activations are still in cache when
its backward pass reads them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from fedhex_hpc._tf import tf
from fedhex_hpc.flows import FlowModel

__all__ = [
    "PART_ELEMENTS",
    "SMALL_L2_PART_ELEMENTS",
    "l2_cache_bytes",
    "lane_gradients",
    "part_elements",
    "parts_per_lane",
]

#: Rows x widest hidden layer of one part where a core has 1 MiB of L2 or more:
#: 1,024 rows of 128 units (512 KB per activation) was the fastest at batch 4,096 on
#: two cores with 2 MB of L2 each (x 1.10 against parts of 2,048 rows in A/B runs;
#: 683 rows did as well, 512 worse).
PART_ELEMENTS = 1024 * 128
#: The same where a core has less L2 than :data:`SMALL_L2_BYTES`. There a 1,024-row
#: part's activation alone fills the L2, so finer parts keep nothing more in it and
#: only add kernels: on cores with 512 KB of L2 and oneDNN kernels, 2,048-row parts
#: ran x 1.07 (batch 4,096) and x 1.05 (batch 16,384) faster than 1,024-row ones,
#: 4,096-row parts as fast as 2,048 and unsplit lanes of 8,192 rows x 0.97.
SMALL_L2_PART_ELEMENTS = 2048 * 128
#: L2 per core below which parts are :data:`SMALL_L2_PART_ELEMENTS`.
SMALL_L2_BYTES = 2**20
#: Where Linux describes the first core's caches.
CPU_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")

#: ``part_loss(x, cond, weight, weights=block_weights)``: a part's share of the loss
PartLoss = Callable[..., tf.Tensor]


def l2_cache_bytes(caches: Path = CPU_CACHES) -> int | None:
    """Size of a core's level-2 cache in bytes, from Linux's ``cache/index*`` files;
    ``None`` where they do not say."""
    for index in sorted(caches.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if level == "2" and size[:-1].isdigit() and size[-1] in "KM":
            return int(size[:-1]) * (2**10 if size[-1] == "K" else 2**20)
    return None


@functools.cache
def part_elements() -> int:
    """Rows x widest hidden layer of one part on this machine's cores:
    :data:`SMALL_L2_PART_ELEMENTS` below :data:`SMALL_L2_BYTES` of L2, else (and
    where the L2 is unknown) :data:`PART_ELEMENTS`."""
    l2 = l2_cache_bytes()
    return SMALL_L2_PART_ELEMENTS if l2 is not None and l2 < SMALL_L2_BYTES else PART_ELEMENTS


def parts_per_lane(model: FlowModel, rows: int | None) -> int:
    """Parts each lane of a batch of ``rows`` events computes in turn; 1 (the lanes
    are the parts of one tape) for one lane, batch norm (whose statistics join all
    rows), or rows known only when the step runs."""
    if rows is None or model.shards < 2 or model.batch_norms:
        return 1
    return max(1, rows // model.shards * max(model.spec.hidden_units) // part_elements())


def lane_gradients(
    model: FlowModel,
    variables: list[tf.Variable],
    part_loss: PartLoss,
    batch: tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None],
    per_lane: int,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """The loss and its gradient of ``batch`` (x, cond, weight), summed over parts.

    The batch is cut into :attr:`FlowModel.shards` lanes that run side by side, each
    lane into ``per_lane`` parts it computes in turn; ``part_loss`` gives a part's
    share of the batch's loss, so the sums are the loss and gradient of the batch.
    The affine blocks' masked weights are formed once: the parts differentiate them,
    and their summed gradient is taken back to the variables in one pass.
    """
    with tf.GradientTape() as tape:
        block_weights = model.block_weights()
    sources = variables if block_weights is None else tf.nest.flatten(block_weights)
    rows = tf.shape(batch[0])[0]
    lanes = model.shards
    results = [
        _lane(
            sources,
            functools.partial(part_loss, weights=block_weights),
            batch,
            (rows * i // lanes, rows * (i + 1) // lanes),
            per_lane,
        )
        for i in range(lanes)
    ]
    loss = tf.add_n([lane_loss for lane_loss, _ in results])
    grads = [tf.add_n(list(g)) for g in zip(*(g for _, g in results), strict=True)]
    if block_weights is not None:
        grads = tape.gradient(sources, variables, output_gradients=grads)
    return loss, grads


def _lane(
    sources: list[tf.Tensor],
    part_loss: PartLoss,
    batch: tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None],
    rows: tuple[tf.Tensor, tf.Tensor],
    n_parts: int,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Loss and gradient towards ``sources`` of the batch's ``rows`` (start, stop), in
    ``n_parts`` parts one after another."""
    start, stop = rows

    def part(i, loss, *grads):
        lo = start + (stop - start) * i // n_parts
        hi = start + (stop - start) * (i + 1) // n_parts
        with tf.GradientTape() as tape:
            tape.watch(sources)
            loss_i = part_loss(*(None if t is None else t[lo:hi] for t in batch))
        grads_i = tape.gradient(loss_i, sources)
        return (i + 1, loss + loss_i, *(g + g_i for g, g_i in zip(grads, grads_i, strict=True)))

    start_values = (tf.constant(0), tf.constant(0.0), *(tf.zeros(s.shape) for s in sources))
    # one part at a time: the next part's forward pass waits for this one's gradient
    _, loss, *grads = tf.while_loop(
        lambda i, *_: i < n_parts, part, start_values, parallel_iterations=1
    )
    return loss, grads
