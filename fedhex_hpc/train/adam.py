"""Keras's Adam update in one kernel per variable.

``optimizer.apply_gradients`` of Keras's Adam runs about 25 small kernels per
variable (reads, moments, bias corrections, the update), which for a 15-block flow
were more than half the kernels of a training step. :func:`apply_gradients` does
the same update with TensorFlow's fused ``ResourceApplyAdam`` kernel on the
optimizer's own moment variables and step counter, so checkpoints, learning-rate
changes and resumes see the Keras optimizer they always saw. Optimizers other than
a plain Adam (AMSGrad, clipping, EMA, weight decay, other classes) keep Keras's
update.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedhex_hpc._tf import tf

__all__ = ["apply_gradients"]


def _fusable(optimizer: tf.keras.optimizers.Optimizer) -> bool:
    """Whether ``optimizer`` is an Adam whose update is exactly the fused kernel's."""
    return (
        type(optimizer) is tf.keras.optimizers.Adam
        and not optimizer.amsgrad
        and not optimizer.use_ema
        and optimizer.weight_decay is None
        and optimizer.clipnorm is None
        and optimizer.global_clipnorm is None
        and optimizer.clipvalue is None
    )


def apply_gradients(
    optimizer: tf.keras.optimizers.Optimizer,
    grads: Sequence[tf.Tensor],
    variables: Sequence[tf.Variable],
) -> None:
    """Update ``variables`` by ``grads`` as ``optimizer.apply_gradients`` would.

    For a plain Adam the update is ``m += (g - m)(1 - b1)``, ``v += (g² - v)(1 - b2)``,
    ``var -= lr √(1 - b2^t) / (1 - b1^t) · m / (√v + eps)`` with ``t`` the step count
    after this step, one fused kernel per variable; it equals Keras's to rounding.
    """
    if not _fusable(optimizer):
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return
    step = tf.cast(optimizer.iterations + 1, tf.float32)
    beta_1 = tf.constant(optimizer.beta_1, tf.float32)
    beta_2 = tf.constant(optimizer.beta_2, tf.float32)
    hyper = {
        "beta1_power": tf.pow(beta_1, step),
        "beta2_power": tf.pow(beta_2, step),
        "lr": tf.cast(optimizer.learning_rate, tf.float32),
        "beta1": beta_1,
        "beta2": beta_2,
        "epsilon": tf.constant(optimizer.epsilon, tf.float32),
    }
    for grad, variable in zip(grads, variables, strict=True):
        index = optimizer._index_dict[optimizer._var_key(variable)]
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=optimizer._momentums[index].handle,
            v=optimizer._velocities[index].handle,
            grad=grad,
            **hyper,
        )
    optimizer.iterations.assign_add(1)
