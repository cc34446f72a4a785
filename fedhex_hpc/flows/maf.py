"""Masked Autoregressive Flow (optionally conditional) assembled from TFP bijectors.

Data-to-latent order: preprocessing, then per block a MAF bijector driven by a
:class:`~fedhex_hpc.flows.made.MADE`, with a permutation (and optionally batch
norm) between consecutive blocks, onto a standard normal base. The log-density
walks that chain directly, one MADE evaluation per block, and sampling walks it
backwards, ``n_features`` MADE evaluations per block; the equivalent TFP
``TransformedDistribution`` is kept as the reference both are tested against.

References:
    Papamakarios et al., "Masked Autoregressive Flow for Density Estimation",
    arXiv:1705.07057.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from fedhex_hpc._tf import tf, tfb, tfd
from fedhex_hpc.errors import DataError
from fedhex_hpc.flows.made import MADE
from fedhex_hpc.flows.preprocessing import Preprocessing, Standardization
from fedhex_hpc.flows.spline import TRANSFORMS, SplineTransform
from fedhex_hpc.seeding import rng as seeded_rng

__all__ = ["LOG_PROB_BATCH", "SAMPLE_BATCH", "FlowModel", "FlowSpec"]

PERMUTATIONS = ("reverse", "random")
#: Events per compiled call of :meth:`FlowModel.log_prob_batched`.
LOG_PROB_BATCH = 65_536
#: Events per compiled call of :meth:`FlowModel.sample_batched`.
SAMPLE_BATCH = 32_768


@dataclass(frozen=True)
class FlowSpec:
    """Everything needed to rebuild a trained flow without its training config."""

    n_features: int
    n_conditions: int
    n_blocks: int
    hidden_units: list[int]
    activation: str
    permutation: str
    log_scale_bound: float
    batch_norm: bool
    seed: int
    preprocessing: Preprocessing
    condition_scaling: Standardization
    feature_names: list[str] = field(default_factory=list)
    condition_names: list[str] = field(default_factory=list)
    identity_init: bool = False
    #: ``affine`` (MAF) or ``spline`` (rational-quadratic, :mod:`fedhex_hpc.flows.spline`).
    transform: str = "affine"
    spline_bins: int = 8
    spline_range: float = 5.0

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)

    @staticmethod
    def unknown_fields(d: dict) -> list[str]:
        """Keys of a :meth:`to_dict` mapping this version does not know, dotted when nested."""

        def unknown(values: object, cls: type, prefix: str) -> list[str]:
            if not isinstance(values, dict):
                return []
            names = {f.name for f in fields(cls)}
            return [prefix + key for key in values if key not in names]

        pre = d.get("preprocessing")
        return [
            *unknown(d, FlowSpec, ""),
            *unknown(pre, Preprocessing, "preprocessing."),
            *unknown(
                pre.get("scaling") if isinstance(pre, dict) else None,
                Standardization,
                "preprocessing.scaling.",
            ),
            *unknown(d.get("condition_scaling"), Standardization, "condition_scaling."),
        ]

    @classmethod
    def from_dict(cls, d: dict) -> FlowSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``d`` has a field this version does not know (named in the message).
        """
        unknown = cls.unknown_fields(d)
        if unknown:
            raise ValueError(f"unknown flow spec field {unknown[0]!r}")
        d = dict(d)
        d["preprocessing"] = Preprocessing.from_dict(d["preprocessing"])
        d["condition_scaling"] = Standardization(**d["condition_scaling"])
        return cls(**d)


def _block_permutations(spec: FlowSpec) -> list[np.ndarray]:
    """One permutation between each pair of consecutive blocks.

    ``random`` draws every permutation anew (fixed by the seed) but never the
    identity: consecutive blocks with the same variable order add little, and in
    2D the identity is one of only two choices.
    """
    n = spec.n_features
    if spec.permutation == "reverse" or n == 2:
        return [np.arange(n)[::-1] for _ in range(spec.n_blocks - 1)]
    rng = seeded_rng(spec.seed, "flow_permutations")
    perms = []
    for _ in range(spec.n_blocks - 1):
        perm = rng.permutation(n)
        while n > 1 and np.array_equal(perm, np.arange(n)):
            perm = rng.permutation(n)
        perms.append(perm)
    return perms


def _invert(
    bijectors: list[tfb.Bijector], z: tf.Tensor, log_det: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Apply the inverses of ``bijectors`` in order, adding their log-determinants.

    A permutation is applied as a product with its 0/1 matrix: exact for finite
    values, and on a CPU a small matmul and its gradient cost less than a gather
    along the feature axis and its scatter.
    """
    for bijector in bijectors:
        if isinstance(bijector, tfb.Permute):
            z = tf.matmul(z, _inverse_permutation_matrix(bijector))
            continue
        log_det += bijector.inverse_log_det_jacobian(z, event_ndims=1)
        z = bijector.inverse(z)
    return z, log_det


def _inverse_permutation_matrix(permute: tfb.Permute) -> np.ndarray:
    """The matrix P with ``z @ P == permute.inverse(z)``."""
    permutation = tf.get_static_value(permute.permutation)
    matrix = np.zeros((len(permutation), len(permutation)), np.float32)
    matrix[np.argsort(permutation), np.arange(len(permutation))] = 1
    return matrix


def _part_bounds(rows: tf.Tensor, n_parts: int) -> list[tf.Tensor]:
    """Row boundaries cutting ``rows`` events into ``n_parts`` parts of near-equal size."""
    return [rows * i // n_parts for i in range(n_parts + 1)]


def _parts(t: tf.Tensor, bounds: list[tf.Tensor]) -> list[tf.Tensor]:
    """The row parts of ``t`` between consecutive ``bounds``."""
    if len(bounds) == 2:
        return [t]
    return [t[start:stop] for start, stop in itertools.pairwise(bounds)]


class FlowModel(tf.Module):
    """A MAF (conditional when ``spec.n_conditions > 0``) with built-in preprocessing.

    ``log_prob`` and ``sample`` take and return data-space float32 tensors; the
    condition normalisation and the preprocessing bijectors are part of the model.
    ``log_prob_batched`` and ``sample_batched`` take and return numpy arrays and
    run compiled functions the model creates once and keeps; their input
    signatures have a free batch dimension, so no batch size traces them again.

    ``shards`` (default 1, set before the first call; not part of the spec) cuts
    every batch of :meth:`to_latent`, :meth:`log_prob` and :meth:`compiled_sample`
    into that many row parts computed as independent chains of kernels: on a CPU
    with one thread per kernel and one inter-op thread per part, the parts run side
    by side, which beats splitting each small matmul over the threads. The results
    are those of one part, up to the order of floating-point sums.
    """

    def __init__(self, spec: FlowSpec) -> None:
        super().__init__(name="flow")
        if spec.permutation not in PERMUTATIONS:
            raise ValueError(f"permutation must be one of {PERMUTATIONS}, got {spec.permutation!r}")
        if spec.transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {spec.transform!r}")
        self.spec = spec
        self.shards = 1
        self.spline = (
            SplineTransform(spec.spline_bins, spec.spline_range)
            if spec.transform == "spline"
            else None
        )
        self.mades = [
            MADE(
                spec.n_features,
                spec.n_conditions,
                spec.hidden_units,
                spec.activation,
                spec.log_scale_bound,
                seed=spec.seed,
                block=i,
                identity_init=spec.identity_init,
                name=f"made_{i}",
                n_params=self.spline.n_params if self.spline else 2,
            )
            for i in range(spec.n_blocks)
        ]
        self.permutations = _block_permutations(spec)
        self.batch_norms = []
        if spec.batch_norm:
            for i in range(spec.n_blocks - 1):
                layer = tf.keras.layers.BatchNormalization(name=f"batch_norm_{i}")
                layer.build((None, spec.n_features))
                self.batch_norms.append(layer)
        self._cond_mean = tf.constant(np.float32(spec.condition_scaling.mean))
        self._cond_std = tf.constant(np.float32(spec.condition_scaling.std))
        self._noise_scale = tf.constant(np.float32(spec.preprocessing.feature_scale()))
        self._domain_centre = tf.constant(np.float32(spec.preprocessing.domain_centre()))

    def _between_blocks(self, i: int, training: bool) -> list[tfb.Bijector]:
        """Bijectors after MAF block ``i`` (data-to-latent order): batch norm, permutation."""
        between = []
        if self.batch_norms:
            between.append(
                tfb.BatchNormalization(batchnorm_layer=self.batch_norms[i], training=training)
            )
        between.append(tfb.Permute(self.permutations[i]))
        return between

    def _base(self) -> tfd.Distribution:
        return tfd.Sample(tfd.Normal(np.float32(0), np.float32(1)), [self.spec.n_features])

    def distribution(self, training: bool = False) -> tfd.Distribution:
        """The flow as a TFP TransformedDistribution (batch norm in the given mode).

        It is the reference the fast :meth:`log_prob` and :meth:`sample` are tested
        against.
        """
        chain = self.spec.preprocessing.bijectors()
        for i, made in enumerate(self.mades):
            if self.spline:
                chain.append(self.spline.maf(made, f"maf_{i}"))
            else:
                chain.append(
                    tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=made, name=f"maf_{i}")
                )
            if i < len(self.permutations):
                chain.extend(self._between_blocks(i, training))
        return tfd.TransformedDistribution(self._base(), tfb.Chain(chain))

    def _normalised_cond(self, cond: tf.Tensor | None) -> tf.Tensor | None:
        if not self.spec.n_conditions:
            return None
        if cond is None:
            raise ValueError(
                f"this flow is conditional on {self.spec.n_conditions} labels: pass cond"
            )
        return (tf.cast(cond, tf.float32) - self._cond_mean) / self._cond_std

    def _bijector_kwargs(self, cond: tf.Tensor | None) -> dict:
        cond_n = self._normalised_cond(cond)
        if cond_n is None:
            return {}
        return {f"maf_{i}": {"conditional_input": cond_n} for i in range(self.spec.n_blocks)}

    def in_domain(self, x: tf.Tensor | np.ndarray) -> tf.Tensor:
        """Which data-space events ``x`` (n, d) the flow has a density for: bool (n,).

        Only ``logit`` preprocessing has a bounded domain, see
        :meth:`~fedhex_hpc.flows.preprocessing.Preprocessing.in_domain`.
        """
        return self.spec.preprocessing.in_domain(tf.cast(x, tf.float32))

    def to_latent(
        self,
        x: tf.Tensor,
        cond: tf.Tensor | None = None,
        training: bool = False,
        shards: int | None = None,
        weights: list[list[tf.Tensor]] | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Map data-space events to the latent space in one pass.

        Each MAF block's inverse is one MADE evaluation: with
        ``shift, log_scale = made(x, cond)``, ``z = (x - shift) * exp(-log_scale)``
        and the block adds ``-sum(log_scale)`` to the log-determinant
        (:meth:`~fedhex_hpc.flows.made.MADE.affine_inverse`, whose gradient is written
        out; the masked weights are formed once for all row parts). The
        preprocessing, batch norm and permutation bijectors use TFP's inverse.

        With :attr:`shards` > 1 the events after the preprocessing are cut into that
        many row parts, each walking the blocks as its own chain of kernels; batch
        norm in training mode joins the parts, so its statistics stay the whole
        batch's.

        Args:
            x: Data-space events (n, d).
            cond: Conditions (n, c) for a conditional flow, else ``None``.
            training: Batch norm uses (and updates) the batch statistics.
            shards: Row parts of this call instead of :attr:`shards`.
            weights: The affine blocks' masked weights (:meth:`block_weights`), when
                the caller formed them once for several calls.

        Returns:
            The latent events (n, d) and log|det dz/dx| per event (n,).
        """
        cond_n = self._normalised_cond(cond)
        x = tf.cast(x, tf.float32)
        z, log_det = _invert(self.spec.preprocessing.bijectors(), x, tf.zeros(tf.shape(x)[:-1]))
        shards = shards or self.shards
        bounds = _part_bounds(tf.shape(z)[0], shards)
        zs, log_dets = _parts(z, bounds), _parts(log_det, bounds)
        conds = [None] * shards if cond_n is None else _parts(cond_n, bounds)
        weights = weights or self.block_weights()
        for i, made in enumerate(self.mades):
            for j in range(shards):
                zs[j], block_log_det = self._invert_block(
                    made, zs[j], conds[j], weights[i] if weights else None
                )
                log_dets[j] += block_log_det
            if i == len(self.permutations):
                break
            between = self._between_blocks(i, training)
            if self.batch_norms:
                z, log_det = _invert(between, tf.concat(zs, 0), tf.concat(log_dets, 0))
                zs, log_dets = _parts(z, bounds), _parts(log_det, bounds)
            else:
                for j in range(shards):
                    zs[j], log_dets[j] = _invert(between, zs[j], log_dets[j])
        return tf.concat(zs, 0), tf.concat(log_dets, 0)

    def block_weights(self) -> list[list[tf.Tensor]] | None:
        """The masked weights of every affine block (:meth:`MADE.weights
        <fedhex_hpc.flows.made.MADE.weights>`), or None for spline blocks (which form
        theirs in each call)."""
        return None if self.spline else [made.weights() for made in self.mades]

    def _invert_block(
        self,
        made: MADE,
        x: tf.Tensor,
        cond_n: tf.Tensor | None,
        weights: list[tf.Tensor] | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The inverse of one MAF block: latent events and log|det| per event.

        ``weights`` are the affine block's masked weights (``made.weights()``, formed
        once when several row parts share them).
        """
        if self.spline:
            return self.spline.inverse(made, x, cond_n)
        return made.affine_inverse(made.weights() if weights is None else weights, x, cond_n)

    def log_prob(
        self,
        x: tf.Tensor,
        cond: tf.Tensor | None = None,
        training: bool = False,
        shards: int | None = None,
        weights: list[list[tf.Tensor]] | None = None,
    ) -> tf.Tensor:
        """Log density of data-space events ``x`` (n, d) given conditions (n, c).

        Events outside the domain (:meth:`in_domain`) get ``-inf``; they pass through the
        bijectors as a point inside it, so neither the value nor a gradient is NaN.
        ``shards`` and ``weights`` are those of :meth:`to_latent`.
        """
        x = tf.cast(x, tf.float32)
        inside = self.in_domain(x)
        x = tf.where(inside[..., tf.newaxis], x, self._domain_centre)
        z, log_det = self.to_latent(x, cond, training, shards, weights)
        log_q = self._base().log_prob(z) + log_det
        return tf.where(inside, log_q, tf.constant(-np.inf, tf.float32))

    def from_latent(self, z: tf.Tensor, cond: tf.Tensor | None = None) -> tf.Tensor:
        """Map latent events to data space: the inverse of :meth:`to_latent`.

        Each MAF block's forward map is autoregressive: starting from ``x = 0``,
        ``D`` rounds of ``shift, log_scale = made(x, cond)``,
        ``x = z * exp(log_scale) + shift`` fix one more feature each. Batch norm is
        in inference mode; the other bijectors use TFP's forward.

        Args:
            z: Latent events (n, d).
            cond: Conditions (n, c) for a conditional flow, else ``None``.

        Returns:
            The data-space events (n, d).
        """
        cond_n = self._normalised_cond(cond)
        x = tf.cast(z, tf.float32)
        for i in reversed(range(len(self.mades))):
            if i < len(self.permutations):
                for bijector in reversed(self._between_blocks(i, training=False)):
                    x = bijector.forward(x)
            x = self._maf_forward(self.mades[i], x, cond_n)
        for bijector in reversed(self.spec.preprocessing.bijectors()):
            x = bijector.forward(x)
        return x

    def _maf_forward(self, made: MADE, z: tf.Tensor, cond_n: tf.Tensor | None) -> tf.Tensor:
        """The forward map of one MAF block: ``n_features`` rounds of its MADE (each
        round's affine map or spline fixes one more feature)."""

        def one_round(i: tf.Tensor, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            if self.spline:
                return i + 1, self.spline.bijector(made.network(x, cond_n)).forward(z)
            shift, log_scale = made(x, cond_n)
            return i + 1, z * tf.exp(log_scale) + shift

        _, x = tf.while_loop(
            lambda i, _: i < self.spec.n_features, one_round, (tf.constant(0), tf.zeros_like(z))
        )
        return x

    def sample(self, n: int, cond: tf.Tensor | None = None, seed: int | None = None) -> tf.Tensor:
        """Draw ``n`` events; with conditions, ``cond`` holds one row per event.

        The latent draws are the base distribution's (as TFP's
        ``TransformedDistribution.sample`` draws them), mapped by :meth:`from_latent`.
        """
        return self.from_latent(self._base().sample(n, seed=seed), cond)

    def add_noise(self, x: tf.Tensor, noise_std: float, seed: tf.Tensor) -> tf.Tensor:
        """Gaussian input noise for training, ``noise_std`` in units of each feature's scale."""
        eps = tf.random.stateless_normal(tf.shape(x), seed=seed)
        return x + noise_std * self._noise_scale * eps

    def _tensor_specs(self) -> tuple[tf.TensorSpec, list[tf.TensorSpec]]:
        """The feature spec and the (empty for unconditional flows) condition spec list."""
        x_spec = tf.TensorSpec([None, self.spec.n_features], tf.float32, name="x")
        n_cond = self.spec.n_conditions
        return x_spec, [tf.TensorSpec([None, n_cond], tf.float32, name="cond")] if n_cond else []

    @functools.cached_property
    def compiled_log_prob(self) -> Callable[..., tf.Tensor]:
        """Compiled ``log_prob(x, cond)``; unconditional flows take ``x`` only."""
        x_spec, cond_spec = self._tensor_specs()
        if cond_spec:
            return tf.function(lambda x, cond: self.log_prob(x, cond), [x_spec, *cond_spec])
        return tf.function(lambda x: self.log_prob(x), [x_spec])

    @functools.cached_property
    def _xla_from_latent(self) -> Callable[..., tf.Tensor]:
        """:meth:`from_latent` compiled with XLA (twice as fast on a CPU as without)."""
        x_spec, cond_spec = self._tensor_specs()
        if cond_spec:
            return tf.function(
                lambda z, cond: self.from_latent(z, cond), [x_spec, *cond_spec], jit_compile=True
            )
        return tf.function(lambda z: self.from_latent(z), [x_spec], jit_compile=True)

    @functools.cached_property
    def compiled_sample(self) -> Callable[..., tf.Tensor]:
        """Compiled ``sample(n, cond, seed)`` (stateless int32 seed of shape [2]).

        Unconditional flows take ``(n, seed)``. The latent draws are those of
        :meth:`sample` (outside XLA, whose random numbers differ); the map to data
        space is XLA-compiled, one call per row part (:attr:`shards`).
        """
        _, cond_spec = self._tensor_specs()
        n_spec = tf.TensorSpec([], tf.int32, name="n")
        seed_spec = tf.TensorSpec([2], tf.int32, name="seed")

        def draw(n, cond, seed):
            z = self._base().sample(n, seed=seed)
            bounds = _part_bounds(n, self.shards)
            if not cond_spec:
                return tf.concat([self._xla_from_latent(part) for part in _parts(z, bounds)], 0)
            parts = zip(_parts(z, bounds), _parts(cond, bounds), strict=True)
            return tf.concat([self._xla_from_latent(*part) for part in parts], 0)

        if cond_spec:
            return tf.function(draw, [n_spec, *cond_spec, seed_spec])
        return tf.function(lambda n, seed: draw(n, None, seed), [n_spec, seed_spec])

    def _check_cond(self, cond: np.ndarray | None, n: int | None) -> np.ndarray | None:
        """``cond`` as float32 (rows, n_conditions), or a DataError naming the mismatch."""
        n_cond = self.spec.n_conditions
        if not n_cond:
            if cond is not None:
                raise DataError("this flow is unconditional: it takes no conditions")
            return None
        if cond is None:
            raise DataError(
                f"this flow is conditional on {self.spec.condition_names}: give conditions"
            )
        cond = np.asarray(cond, dtype=np.float32).reshape(-1, n_cond)
        if n is not None and len(cond) != n:
            raise DataError(f"got {len(cond)} rows of conditions for {n} events")
        return cond

    def log_prob_batched(
        self, x: np.ndarray, cond: np.ndarray | None = None, batch_size: int = LOG_PROB_BATCH
    ) -> np.ndarray:
        """Per-event log density of data-space events, in compiled batches.

        Args:
            x: Events (n, n_features).
            cond: Conditions (n, n_conditions) for a conditional flow, else ``None``.
            batch_size: Events per compiled call.

        Returns:
            The log densities (n,) as float64.

        Raises:
            DataError: ``x`` or ``cond`` have the wrong shape, or ``cond`` is
                missing (given) for a conditional (unconditional) flow.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.spec.n_features:
            raise DataError(f"expected events of shape (n, {self.spec.n_features}), got {x.shape}")
        cond = self._check_cond(cond, len(x))
        parts = [np.zeros(0)]
        for start in range(0, len(x), batch_size):
            rows = slice(start, start + batch_size)
            args = [x[rows]] if cond is None else [x[rows], cond[rows]]
            parts.append(self.compiled_log_prob(*map(tf.constant, args)).numpy())
        return np.concatenate(parts).astype(np.float64)

    def sample_batched(
        self,
        n: int,
        cond: np.ndarray | None = None,
        seed: int = 0,
        batch_size: int = SAMPLE_BATCH,
    ) -> np.ndarray:
        """Draw events in compiled batches; batch ``i`` uses the seed ``[seed, i]``.

        Args:
            n: Number of events; a conditional flow draws one per row of ``cond``.
            cond: Conditions (n, n_conditions) for a conditional flow, else ``None``.
            seed: Seed of the draw (taken modulo 2**31).
            batch_size: Events per compiled call.

        Returns:
            The events (n, n_features), float32.

        Raises:
            DataError: ``cond`` is missing (given) for a conditional (unconditional) flow.
        """
        cond = self._check_cond(cond, None)
        if cond is not None:
            n = len(cond)
        parts = [np.zeros((0, self.spec.n_features), np.float32)]
        for i, start in enumerate(range(0, n, batch_size)):
            size = tf.constant(min(batch_size, n - start), tf.int32)
            batch_seed = tf.constant([seed % 2**31, i], tf.int32)
            if cond is None:
                parts.append(self.compiled_sample(size, batch_seed).numpy())
            else:
                batch_cond = tf.constant(cond[start : start + batch_size])
                parts.append(self.compiled_sample(size, batch_cond, batch_seed).numpy())
        return np.concatenate(parts)
