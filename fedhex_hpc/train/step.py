"""The compiled training step shared by the trainer and the throughput benchmark."""

from __future__ import annotations

from collections.abc import Callable

from fedhex_hpc._tf import tf
from fedhex_hpc.flows import FlowModel

__all__ = ["build_train_step"]


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
    """
    variables = model.trainable_variables

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
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return tf.function(step, jit_compile=jit_compile)
