"""MADE: the masked autoregressive network that parameterises one MAF block.

One fused network returns the shift and the bounded log-scale of every feature, so
a MAF block costs one forward pass of a few dense layers. Masks are constant and
multiplied into the kernels inside the call, which XLA folds into the matmuls.

References:
    Germain et al., "MADE: Masked Autoencoder for Distribution Estimation",
    arXiv:1502.03509.
    Papamakarios et al., "Masked Autoregressive Flow for Density Estimation",
    arXiv:1705.07057.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from fedhex_hpc._tf import tf
from fedhex_hpc.seeding import derive_seed

__all__ = ["ACTIVATIONS", "MADE", "made_masks"]

ACTIVATIONS = {
    "relu": tf.nn.relu,
    "tanh": tf.nn.tanh,
    "elu": tf.nn.elu,
    "gelu": tf.nn.gelu,
    "silu": tf.nn.silu,
}


def made_masks(n_features: int, hidden_units: Sequence[int]) -> list[np.ndarray]:
    """Binary masks of a MADE with the natural input order 1..D.

    Hidden units get degrees cycling through 1..D-1 so every degree is present in
    every layer; with one feature they get degree 0 and see only the conditions.

    Args:
        n_features: Number of autoregressive inputs D.
        hidden_units: Width of each hidden layer.

    Returns:
        One float32 mask per layer, shaped like its kernel; the last maps the final
        hidden layer to the D outputs of one parameter (shift or log-scale).
    """
    in_degrees = np.arange(1, n_features + 1)
    degrees = [in_degrees]
    for units in hidden_units:
        if n_features > 1:
            degrees.append(np.arange(units) % (n_features - 1) + 1)
        else:
            degrees.append(np.zeros(units, dtype=int))
    masks = [
        (d_out[None, :] >= d_in[:, None]).astype(np.float32)
        for d_in, d_out in itertools.pairwise(degrees)
    ]
    masks.append((in_degrees[None, :] > degrees[-1][:, None]).astype(np.float32))
    return masks


class MADE(tf.Module):
    """Masked dense network mapping x (and optional conditions) to (shift, log_scale).

    All kernels start Glorot-uniform, seeded from the run seed by block and layer
    (the ``made_init`` stream of :mod:`fedhex_hpc.seeding`). With ``identity_init``
    the output layer starts at zero instead, so an untrained block is the identity
    map; that is a saddle
    for features that are independent of the ones before them (the symmetric start
    gives no gradient towards using them), so it is not the default.

    The log-scale is soft-clamped to (-bound, bound) with bound * tanh(s / bound),
    which keeps training from diverging on steep densities. With ``n_params`` other
    than 2 the network gives that many raw parameters per feature (:meth:`network`),
    e.g. the bins of a spline block (:mod:`fedhex_hpc.flows.spline`).
    """

    def __init__(
        self,
        n_features: int,
        n_conditions: int,
        hidden_units: Sequence[int],
        activation: str,
        log_scale_bound: float,
        seed: int,
        block: int = 0,
        identity_init: bool = False,
        name: str | None = None,
        n_params: int = 2,
    ) -> None:
        super().__init__(name=name)

        def init(layer: int, shape: tuple[int, int]) -> tf.Tensor:
            """Glorot-uniform weights of ``layer``, from the run seed's ``made_init`` stream."""
            layer_seed = derive_seed(seed, "made_init", block, layer) % 2**31
            return tf.keras.initializers.GlorotUniform(seed=layer_seed)(shape)

        self.n_features = n_features
        self.activation = ACTIVATIONS[activation]
        #: derivative from the activation's output, or None (differentiated with a tape)
        self.activation_grad = _ACTIVATION_GRADS.get(activation)
        self.log_scale_bound = float(log_scale_bound)
        masks = made_masks(n_features, hidden_units)
        widths = [n_features, *hidden_units]
        self.masks = [tf.constant(m) for m in masks[:-1]]
        self.kernels = [
            tf.Variable(init(i, (w_in, w_out)), name=f"kernel_{i}")
            for i, (w_in, w_out) in enumerate(itertools.pairwise(widths))
        ]
        self.biases = [
            tf.Variable(tf.zeros([w]), name=f"bias_{i}") for i, w in enumerate(hidden_units)
        ]
        self.cond_kernel = (
            tf.Variable(init(len(widths), (n_conditions, hidden_units[0])), name="cond_kernel")
            if n_conditions
            else None
        )
        # All parameters share one matmul: the output mask is tiled once per parameter.
        self.n_params = n_params
        self.out_mask = tf.constant(np.concatenate([masks[-1]] * n_params, axis=1))
        out_shape = (widths[-1], n_params * n_features)
        self.out_kernel = tf.Variable(
            tf.zeros(out_shape) if identity_init else init(len(widths) + 1, out_shape),
            name="out_kernel",
        )
        self.out_bias = tf.Variable(tf.zeros([n_params * n_features]), name="out_bias")

    def weights(self) -> list[tf.Tensor]:
        """The masked weights of one evaluation: kernel and bias of every layer in order,
        the first kernel with the condition rows below the feature rows.

        The conditions join the features in the first layer's matmul: a product over
        a handful of inputs costs a CPU as much as one over a hundred, so one product
        instead of two saves most of the first layer's time.
        """
        weights = []
        for i, (kernel, mask, bias) in enumerate(
            zip(self.kernels, self.masks, self.biases, strict=True)
        ):
            masked = kernel * mask
            if i == 0 and self.cond_kernel is not None:
                masked = tf.concat([masked, self.cond_kernel], axis=0)
            weights += [masked, bias]
        return [*weights, self.out_kernel * self.out_mask, self.out_bias]

    def network(self, x: tf.Tensor, conditional_input: tf.Tensor | None = None) -> tf.Tensor:
        """The raw outputs (n, n_params * d), parameter-major: column ``p * d + j`` is
        parameter ``p`` of feature ``j`` and depends only on the features before ``j``."""
        inputs = x if self.cond_kernel is None else tf.concat([x, conditional_input], axis=-1)
        return _layers(inputs, self.weights(), self.activation)[0]

    def __call__(
        self, x: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Return (shift, log_scale), each shaped like ``x``; every call runs the network."""
        shift, raw_log_scale = tf.split(self.network(x, conditional_input), 2, axis=-1)
        bound = self.log_scale_bound
        return shift, bound * tf.tanh(raw_log_scale / bound)

    def affine_inverse(
        self, weights: list[tf.Tensor], x: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The inverse of the affine MAF block this network drives, with its gradient
        written out.

        ``z = (x - shift) * exp(-log_scale)`` with ``shift, log_scale = self(x, cond)``,
        and ``log|det dz/dx| = -sum(log_scale)``. The hand-written backward pass runs
        the narrow products in the orientation a CPU runs faster (see
        :func:`_layers_backward`), sums each bias gradient in one kernel and leaves
        out the split, slice and concatenation kernels automatic differentiation adds.
        ``weights`` are those of :meth:`weights`, formed once for all row parts.
        It is tested against TFP's ``MaskedAutoregressiveFlow`` for every activation.

        Returns:
            The latent events and log|det| per event (n,).
        """
        activation_grad = self.activation_grad
        bound = self.log_scale_bound
        d = self.n_features
        conditional = self.cond_kernel is not None

        @tf.custom_gradient
        def inverse(x: tf.Tensor, *args: tf.Tensor):
            weights = list(args[1:] if conditional else args)
            inputs = tf.concat([x, args[0]], axis=-1) if conditional else x
            out, hidden, pre = _layers(inputs, weights, self.activation, activation_grad)
            shift, raw_log_scale = tf.split(out, 2, axis=-1)
            squashed = tf.tanh(raw_log_scale / bound)
            log_scale = bound * squashed
            inv_scale = tf.exp(-log_scale)
            z = (x - shift) * inv_scale

            def grad(dz: tf.Tensor, dlog_det: tf.Tensor | None):
                dz_scaled = dz * inv_scale
                dlog_scale = -dz * z
                if dlog_det is not None:
                    dlog_scale -= dlog_det[:, tf.newaxis]
                dout = tf.concat([-dz_scaled, dlog_scale * (1 - tf.square(squashed))], axis=-1)
                dinputs, *dweights = _layers_backward(
                    dout, [inputs, *hidden], pre, weights, self.activation, activation_grad
                )
                dcond = [dinputs[:, d:]] if conditional else []
                return (dz_scaled + dinputs[:, :d], *dcond, *dweights)

            return (z, -tf.reduce_sum(log_scale, axis=-1)), grad

        return inverse(x, *([conditional_input] if conditional else []), *weights)


ActivationGrad = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

#: Activation derivatives from the activation's output: ``grad(upstream, output)``.
#: Other activations keep their pre-activations and differentiate them with a tape.
_ACTIVATION_GRADS: dict[str, ActivationGrad] = {
    "relu": lambda g, h: tf.raw_ops.ReluGrad(gradients=g, features=h),
    "tanh": lambda g, h: g * (1 - tf.square(h)),
    "elu": lambda g, h: tf.raw_ops.EluGrad(gradients=g, outputs=h),
}


def _layers(
    inputs: tf.Tensor,
    weights: list[tf.Tensor],
    activation: Callable,
    activation_grad: ActivationGrad | None = None,
) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]:
    """The dense layers of a MADE on ``inputs``: (outputs, hidden activations,
    pre-activations).

    Pre-activations are kept only for an activation without an output-based
    derivative (``activation_grad`` None), else matmul, bias and activation stay one
    fused kernel.
    """
    hidden, pre = [], []
    h = inputs
    for i in range(0, len(weights) - 2, 2):
        a = tf.nn.bias_add(tf.matmul(h, weights[i]), weights[i + 1])
        if activation_grad is None:
            pre.append(a)
        h = activation(a)
        hidden.append(h)
    return tf.nn.bias_add(tf.matmul(h, weights[-2]), weights[-1]), hidden, pre


def _layers_backward(
    dout: tf.Tensor,
    layer_inputs: list[tf.Tensor],
    pre_activations: list[tf.Tensor],
    weights: list[tf.Tensor],
    activation: Callable,
    activation_grad: ActivationGrad | None,
) -> list[tf.Tensor]:
    """The backward pass of :func:`_layers`: the gradients of its inputs and of
    every weight (in the order of ``weights``), given the gradient of its outputs.

    ``layer_inputs`` holds the input of every dense layer (the network's inputs, then
    the hidden activations). Products with a narrow result run transposed, as the
    wide result of a narrow input: (W gᵀ)ᵀ for the inputs, (gᵀ h)ᵀ for the output
    kernel; on one CPU thread each takes about 40 % of the time of the other orientation.
    """
    grads = [
        tf.transpose(tf.matmul(dout, layer_inputs[-1], transpose_a=True)),
        tf.raw_ops.BiasAddGrad(out_backprop=dout),
    ]
    g = tf.matmul(dout, weights[-2], transpose_b=True)
    for i in reversed(range(len(weights) // 2 - 1)):
        if activation_grad is None:
            with tf.GradientTape() as tape:
                tape.watch(pre_activations[i])
                h = activation(pre_activations[i])
            da = tape.gradient(h, pre_activations[i], output_gradients=g)
        else:
            da = activation_grad(g, layer_inputs[i + 1])
        grads = [
            tf.matmul(layer_inputs[i], da, transpose_a=True),
            tf.raw_ops.BiasAddGrad(out_backprop=da),
            *grads,
        ]
        if i:
            g = tf.matmul(da, weights[2 * i], transpose_b=True)
        else:
            g = tf.transpose(tf.matmul(weights[0], da, transpose_b=True))
    return [g, *grads]
