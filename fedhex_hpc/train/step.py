"""The compiled training step shared by the trainer and the benchmarks.

At small batch sizes the per-call cost of a compiled function (Python, argument
conversion, launching a few thousand kernels) is a large part of a step, so the
trainer runs several consecutive steps per call: :func:`build_train_steps` loops
over a stack of batches inside one ``tf.function`` (see :func:`steps_per_call`).
"""

from __future__ import annotations

from collections.abc import Callable

from fedhex_hpc._tf import tf
from fedhex_hpc.flows import FlowModel
from fedhex_hpc.train.adam import apply_gradients

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
    wrap_tape: Callable[[tf.GradientTape], tf.GradientTape],
    weight_decay: float = 0.0,
) -> Callable:
    """The uncompiled ``step(x, cond, weight, noise_seed) -> loss``."""
    variables = model.trainable_variables
    optimizer.build(variables)

    def step(x, cond, weight, noise_seed):
        if noise_std > 0:
            x = model.add_noise(x, noise_std, noise_seed)
        with tf.GradientTape() as tape:
            logq = model.log_prob(x, cond, training=True)
            if weight is None:
                loss = -tf.reduce_mean(logq)
            else:
                loss = -tf.reduce_mean(weight * logq) / weight_norm
        grads = wrap_tape(tape).gradient(loss, variables)
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
    wrap_tape: Callable[[tf.GradientTape], tf.GradientTape] = lambda tape: tape,
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

    step = _step_function(model, optimizer, noise_std, weight_norm, lambda tape: tape, weight_decay)

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

    # shapes generalise after the second trace: a run sees full stacks, a shorter
    # last stack and the last partial batch, and each trace of the loop is slow
    return tf.function(steps, jit_compile=jit_compile, reduce_retracing=True)
