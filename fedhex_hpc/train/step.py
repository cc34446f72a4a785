"""The compiled training step shared by the trainer and the benchmarks.

At small batch sizes the per-call cost of a compiled function (Python, argument
conversion, launching a few thousand kernels) is a large part of a step, so the
trainer runs several consecutive steps per call: :func:`build_train_steps` loops
over a stack of batches inside one ``tf.function`` (see :func:`steps_per_call`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from fedhex_hpc._tf import tf
from fedhex_hpc.flows import FlowModel
from fedhex_hpc.train.adam import apply_gradients
from fedhex_hpc.train.parts import lane_gradients, parts_per_lane

__all__ = ["STEP_EVENTS", "build_train_step", "build_train_steps", "steps_per_call"]

#: Events per compiled call the trainer aims at: batches smaller than this are
#: run ``STEP_EVENTS // batch_size`` steps per call.
STEP_EVENTS = 8192


def steps_per_call(batch_size: int) -> int:
    """Training steps per compiled call at ``batch_size`` (1 from ``STEP_EVENTS`` up)."""
    return max(1, STEP_EVENTS // batch_size)


def _step_function(
    model: FlowModel,
    optimizer: tf.keras.optimizers.Optimizer,
    noise_std: float,
    weight_norm: float,
    wrap_tape: Callable[[tf.GradientTape], tf.GradientTape] | None,
    weight_decay: float = 0.0,
) -> Callable:
    """The uncompiled ``step(x, cond, weight, noise_seed) -> loss``.

    Without a ``wrap_tape``, a batch large for its row parts has its gradient
    computed a few parts at a time (:mod:`fedhex_hpc.train.parts`).
    """
    variables = model.trainable_variables
    optimizer.build(variables)

    def step(x, cond, weight, noise_seed):
        if noise_std > 0:
            x = model.add_noise(x, noise_std, noise_seed)
        rows = tf.cast(tf.shape(x)[0], tf.float32)

        def loss_of(x, cond, weight, shards=None, weights=None):
            """The rows' share of the batch's loss (the negative mean log-likelihood)."""
            logq = model.log_prob(x, cond, training=True, shards=shards, weights=weights)
            if weight is not None:
                logq = weight * logq / weight_norm
            return -tf.reduce_sum(logq) / rows

        per_lane = parts_per_lane(model, x.shape[0])
        if per_lane > 1 and wrap_tape is None:
            part_loss = functools.partial(loss_of, shards=1)
            loss, grads = lane_gradients(model, variables, part_loss, (x, cond, weight), per_lane)
        else:
            with tf.GradientTape() as tape:
                loss = loss_of(x, cond, weight)
            grads = (tape if wrap_tape is None else wrap_tape(tape)).gradient(loss, variables)
        if weight_decay:
            grads = [g + weight_decay * v for g, v in zip(grads, variables, strict=True)]
        apply_gradients(optimizer, grads, variables)
        return loss

    return step


def build_train_step(
    model: FlowModel,
    optimizer: tf.keras.optimizers.Optimizer,
    noise_std: float = 0.0,
    weight_norm: float = 1.0,
    jit_compile: bool = False,
    wrap_tape: Callable[[tf.GradientTape], tf.GradientTape] | None = None,
    weight_decay: float = 0.0,
) -> Callable:
    """A ``tf.function`` ``step(x, cond, weight, noise_seed) -> loss`` that updates ``model``.

    The loss is the negative (event-weighted) mean log-likelihood of the batch;
    weighted losses are divided by ``weight_norm``, the mean weight of the whole
    training set, so batches with few or negative weights do not blow up.
    ``cond`` and ``weight`` may be ``None``; ``noise_seed`` is a stateless seed
    (shape [2]) for the optional Gaussian input noise. ``wrap_tape`` lets
    data-parallel training average the gradients over ranks. ``weight_decay`` adds
    ``weight_decay * v`` to the gradient of each variable ``v`` (torch Adam's L2 term).
    A Keras Adam updates in one fused kernel per variable (:mod:`fedhex_hpc.train.adam`).
    """
    step = _step_function(model, optimizer, noise_std, weight_norm, wrap_tape, weight_decay)
    return tf.function(step, jit_compile=jit_compile)


def build_train_steps(
    model: FlowModel,
    optimizer: tf.keras.optimizers.Optimizer,
    noise_std: float = 0.0,
    weight_norm: float = 1.0,
    jit_compile: bool = False,
    wrap_tape: Callable[[tf.GradientTape], tf.GradientTape] | None = None,
    weight_decay: float = 0.0,
) -> Callable:
    """``steps(x, cond, weight, noise_seeds) -> losses``: consecutive steps in one call.

    The arguments are those of :func:`build_train_step` stacked along a leading
    step axis: ``x`` (k, B, d), ``cond`` (k, B, c) or ``None``, ``weight``
    (k, B) or ``None``, ``noise_seeds`` (k, 2); it returns the k losses. The
    steps are the very ones k calls of the single step would take, looped inside
    one compiled function. With a ``wrap_tape`` (data-parallel training, whose
    collective operations stay out of graph loops) the steps are one compiled
    call each, looped in Python.
    """
    if wrap_tape is not None:
        single = build_train_step(
            model, optimizer, noise_std, weight_norm, jit_compile, wrap_tape, weight_decay
        )

        def python_loop(x, cond, weight, noise_seeds):
            return tf.stack(
                [
                    single(
                        x[i],
                        None if cond is None else cond[i],
                        None if weight is None else weight[i],
                        noise_seeds[i],
                    )
                    for i in range(len(x))
                ]
            )

        return python_loop

    step = _step_function(model, optimizer, noise_std, weight_norm, None, weight_decay)

    def steps(x, cond, weight, noise_seeds):
        n_steps = tf.shape(x)[0]
        losses = tf.TensorArray(tf.float32, size=n_steps)
        for i in tf.range(n_steps):
            loss = step(
                x[i],
                None if cond is None else cond[i],
                None if weight is None else weight[i],
                noise_seeds[i],
            )
            losses = losses.write(i, loss)
        return losses.stack()

    # One trace per stack shape, so that the batch size is known when the step is
    # traced (for parts_per_lane): a run sees full stacks, an epoch's shorter last
    # stack, its partial last batch and a resumed epoch's first stack.
    return tf.function(steps, jit_compile=jit_compile)
