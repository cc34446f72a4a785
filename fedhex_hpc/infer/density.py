"""Conditional densities a likelihood is built from: a trained flow or an exact target.

Both answer one batched question: the log density of every event under every
condition row, ``L[k, i] = log f(x_i | c_k)``, and its gradient with respect to
the condition, ``G[k, i, :]``. A flow answers it in one compiled TensorFlow call
(events x conditions, gradients by ``tf.GradientTape``); an exact target with
numpy (gradients by central differences). Neither loops over events in Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedhex_hpc.errors import ConfigError, RunDirError

__all__ = ["Density", "FlowDensity", "TargetDensity", "trained_range"]

#: Rows (events x conditions) per compiled flow call; bounds the memory of one call.
CHUNK_ROWS = 1 << 18


class Density:
    """Interface of a conditional density (see the module docstring).

    Attributes:
        label: What the density is (a run folder or a target name), for messages.
        feature_names: Names of the columns of ``x``.
        condition_names: Names of the columns of the conditions.
        trained_range: ``(low, high)`` arrays of the conditions seen in training.
    """

    label: str
    feature_names: list[str]
    condition_names: list[str]
    trained_range: tuple[np.ndarray, np.ndarray]

    def evaluate(
        self, x: np.ndarray, conds: np.ndarray, gradient: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Log densities ``(K, n)`` of events ``x`` (n, d) under conditions (K, c).

        Returns:
            ``(L, G)``: float64 log densities and, with ``gradient``, their
            derivatives with respect to the conditions ``(K, n, c)`` (else None).
        """
        raise NotImplementedError

    def sample(self, n: int, cond: np.ndarray, seed: int) -> np.ndarray:
        """``n`` events (n, d) at the single condition row ``cond`` (c,)."""
        raise NotImplementedError


def trained_range(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest training condition of the run in ``run_dir``.

    Raises:
        ConfigError: the run's data source records no conditions this can read.
    """
    from fedhex_hpc.data.columns import read_columns
    from fedhex_hpc.runs import RunDir

    data = RunDir.open(run_dir).config().data
    if data.source == "target":
        from fedhex_hpc.targets import get_target

        conds = getattr(get_target(data.target, **data.target_params), "train_conditions", None)
        if conds is None:
            raise ConfigError(f"{run_dir} was trained on an unconditional target {data.target}")
        return conds.min(axis=0), conds.max(axis=0)
    if data.source == "file" and data.conditions:
        columns = read_columns(data.path, list(data.conditions), data.key)
        table = np.stack([columns[n] for n in data.conditions], axis=1)
        return table.min(axis=0), table.max(axis=0)
    raise ConfigError(
        f"{run_dir}: the trained condition range is unknown for data source {data.source}; "
        "give every condition parameter limits and pass --allow-extrapolation"
    )


class FlowDensity(Density):
    """A trained conditional flow; :meth:`open` loads the flow of a finished run folder."""

    def __init__(
        self, flow: Any, trained: tuple[np.ndarray, np.ndarray], label: str = "a flow"
    ) -> None:
        """Wrap ``flow`` (a :class:`~fedhex_hpc.flows.FlowModel`) trained on conditions in
        ``trained`` (low, high).

        Raises:
            ConfigError: the flow is unconditional.
        """
        self.flow = flow
        self.label = label
        self.feature_names = list(flow.spec.feature_names)
        self.condition_names = list(flow.spec.condition_names)
        if not self.condition_names:
            raise ConfigError(f"{label} is an unconditional flow; inference needs one")
        self.trained_range = trained
        self._compiled = self._compile()

    @classmethod
    def open(cls, run_dir: str | Path) -> FlowDensity:
        """The final flow of the run folder ``run_dir``.

        Raises:
            RunDirError: not a run, or its training has not finished.
        """
        from fedhex_hpc.flows import load_flow
        from fedhex_hpc.runs import RunDir

        run = RunDir.open(run_dir)
        state = run.status().get("state", "unknown")
        if state != "done" or not run.model.is_dir():
            raise RunDirError(
                f"run {run.path} is not finished (state {state}); finish it with "
                f"`fedhex train --resume {run.path}`"
            )
        return cls(load_flow(run.model), trained_range(run.path), f"run {run.path}")

    def _compile(self):
        from fedhex_hpc._tf import tf

        flow = self.flow
        d, c = len(self.feature_names), len(self.condition_names)
        signature = [tf.TensorSpec([None, d], tf.float32), tf.TensorSpec([None, c], tf.float32)]

        def tiled(x, conds):
            n, k = tf.shape(x)[0], tf.shape(conds)[0]
            return tf.tile(x, [k, 1]), tf.repeat(conds, n, axis=0), n, k

        @tf.function(input_signature=signature)
        def value(x, conds):
            xx, cc, n, k = tiled(x, conds)
            return tf.reshape(flow.log_prob(xx, cc), [k, n])

        @tf.function(input_signature=signature)
        def value_and_gradient(x, conds):
            xx, cc, n, k = tiled(x, conds)
            with tf.GradientTape() as tape:
                tape.watch(cc)
                log_prob = flow.log_prob(xx, cc)
            # Each row depends only on its own condition, so the gradient of the sum
            # holds every row's own derivative.
            grad = tape.gradient(log_prob, cc)
            return tf.reshape(log_prob, [k, n]), tf.reshape(grad, [k, n, c])

        return {False: value, True: value_and_gradient}

    def evaluate(
        self, x: np.ndarray, conds: np.ndarray, gradient: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """See :meth:`Density.evaluate`; one compiled call per chunk of events."""
        x32, c32 = np.asarray(x, np.float32), np.asarray(conds, np.float32)
        step = max(1, CHUNK_ROWS // max(1, len(c32)))
        values, grads = [], []
        for start in range(0, max(len(x32), 1), step):
            out = self._compiled[gradient](x32[start : start + step], c32)
            values.append(out[0].numpy() if gradient else out.numpy())
            if gradient:
                grads.append(out[1].numpy())
        value = np.concatenate(values, axis=1).astype(np.float64)
        return value, (np.concatenate(grads, axis=1).astype(np.float64) if gradient else None)

    def sample(self, n: int, cond: np.ndarray, seed: int) -> np.ndarray:
        """See :meth:`Density.sample` (the flow's own sampler, seeded)."""
        rows = np.repeat(np.asarray(cond, np.float32)[None, :], n, axis=0)
        return np.asarray(self.flow.sample(n, rows, seed=seed), np.float64)


class TargetDensity(Density):
    """The exact density of a conditional target (the reference likelihood)."""

    def __init__(self, name: str, params: dict | None = None) -> None:
        """Build target ``name`` with ``params``.

        Raises:
            ConfigError: unknown or unconditional target.
        """
        from fedhex_hpc.targets import get_target

        self.target = get_target(name, **(params or {}))
        conds = getattr(self.target, "train_conditions", None)
        if conds is None:
            raise ConfigError(f"target {name} is unconditional; inference needs p(x | condition)")
        self.label = f"target {name}"
        self.feature_names = self.target.feature_names
        self.condition_names = self.target.condition_names
        self.trained_range = (conds.min(axis=0), conds.max(axis=0))

    def _log_prob(self, x: np.ndarray, conds: np.ndarray) -> np.ndarray:
        k, n = len(conds), len(x)
        flat = self.target.log_prob(np.tile(x, (k, 1)), np.repeat(conds, n, axis=0))
        return flat.reshape(k, n)

    def evaluate(
        self, x: np.ndarray, conds: np.ndarray, gradient: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """See :meth:`Density.evaluate`; gradients by central differences."""
        x, conds = np.asarray(x, np.float64), np.atleast_2d(np.asarray(conds, np.float64))
        if not gradient:
            return self._log_prob(x, conds), None
        k, c = conds.shape
        steps = 1e-5 * np.maximum(1.0, np.abs(conds))  # (K, c)
        shifts = np.zeros((2 * c, k, c))
        for j in range(c):
            shifts[2 * j, :, j], shifts[2 * j + 1, :, j] = steps[:, j], -steps[:, j]
        rows = np.concatenate([conds[None], conds[None] + shifts]).reshape(-1, c)
        values = self._log_prob(x, rows).reshape(1 + 2 * c, k, len(x))  # one call
        grads = np.stack(
            [(values[1 + 2 * j] - values[2 + 2 * j]) / (2 * steps[:, j, None]) for j in range(c)],
            axis=-1,
        )
        return values[0], grads

    def sample(self, n: int, cond: np.ndarray, seed: int) -> np.ndarray:
        """See :meth:`Density.sample`."""
        rows = np.repeat(np.asarray(cond, np.float64)[None, :], n, axis=0)
        return self.target.sample_given(rows, seed=seed)
