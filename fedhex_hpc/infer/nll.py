"""−2 ln L of a model on events, for many parameter points at once, with gradients.

Convention: every value is ``−2 ln L`` (Minuit ``errordef = 1``). With yields
``nu_p(theta)`` and process densities ``f_p(x | theta)``:

* extended: ``2 [sum_p nu_p − sum_i w_i ln sum_p nu_p f_p(x_i)]``
* shape:    ``−2 sum_i w_i ln(sum_p nu_p f_p(x_i) / sum_p nu_p)``
* binned:   ``2 sum_b [mu_b − n_b + n_b ln(n_b / mu_b)]`` with weighted counts
  ``n_b`` and expected counts ``mu_b = sum_p nu_p ∫_b f_p`` (Gauss–Legendre
  quadrature of the densities, 8 nodes per bin)

plus ``theta_j^2`` for every nuisance parameter (a unit Gaussian constraint).
The extended and shape forms drop no constant; the binned form is the
saturated-model (Baker–Cousins) deviance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedhex_hpc.data import check_finite, read_columns
from fedhex_hpc.errors import ConfigError, DataError
from fedhex_hpc.infer.model import LikelihoodModel

__all__ = ["NLL", "load_events"]

#: Gauss–Legendre nodes per bin of the binned likelihood.
NODES_PER_BIN = 8
#: Parameter points x events per batched evaluation (bounds the memory).
BATCH_ELEMENTS = 1 << 22


def load_events(
    path: str | Path, model: LikelihoodModel, weight: str = "", key: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """The events (n, d) in the model's feature order and their weights (n,) from a file.

    Args:
        path: HDF5, ``.npz`` or structured ``.npy`` file with named columns.
        model: Its feature names are the columns read.
        weight: Column of event weights (default: every weight 1).
        key: HDF5 group or dataset.

    Raises:
        DataError: a feature column is missing (named, with the nearest ones),
            no events, or NaN/Inf rows.
    """
    names = [*model.feature_names, *([weight] if weight else [])]
    columns = read_columns(path, names, key)
    x = np.stack([np.asarray(columns[n], np.float64) for n in model.feature_names], axis=1)
    if len(x) == 0:
        raise DataError(f"{path} holds no events")
    check_finite(x, f"{path}")
    w = np.asarray(columns[weight], np.float64) if weight else np.ones(len(x))
    check_finite(w, f"{path} column {weight}")
    return x, w


class NLL:
    """``−2 ln L`` of ``model`` on fixed events; callable by Minuit (see the module docstring).

    Attributes:
        calls: Parameter points evaluated so far (values and gradients alike).
    """

    errordef = 1.0

    def __init__(
        self, model: LikelihoodModel, x: np.ndarray, weights: np.ndarray | None = None
    ) -> None:
        """Bind the model to events ``x`` (n, d) with optional weights (n,).

        Raises:
            DataError: no events, wrong width or non-finite values.
            ConfigError: a binned model without a single feature or a range.
        """
        self.model = model
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != len(model.feature_names):
            raise DataError(
                f"events have shape {x.shape}; the model's features are {model.feature_names}"
            )
        check_finite(x, "the events")
        self.x = x
        self.w = np.ones(len(x)) if weights is None else np.asarray(weights, np.float64)
        if self.w.shape != (len(x),):
            raise DataError(f"{len(self.w)} weights for {len(x)} events")
        self.weighted = bool(np.any(self.w != 1.0))
        self.calls = 0
        self._cache: tuple[bytes, float, np.ndarray] | None = None
        if model.likelihood == "binned":
            self._setup_bins()

    # --- binned ----------------------------------------------------------------------
    def _setup_bins(self) -> None:
        binning, features = self.model.binning, self.model.feature_names
        if len(features) != 1:
            raise ConfigError(
                f"model {self.model.name}: the binned likelihood needs one feature, got {features}"
            )
        if binning.feature and binning.feature != features[0]:
            raise ConfigError(f"binning.feature {binning.feature} is not the feature {features[0]}")
        if len(binning.range) != 2 or not binning.range[0] < binning.range[1]:
            raise ConfigError("binning.range must be [low, high] with low < high")
        edges = np.linspace(*binning.range, binning.bins + 1)
        self.counts = np.histogram(self.x[:, 0], edges, weights=self.w)[0]
        nodes, weights = np.polynomial.legendre.leggauss(NODES_PER_BIN)
        half = np.diff(edges)[:, None] / 2
        centres = (edges[:-1] + edges[1:])[:, None] / 2
        self.nodes = (centres + half * nodes[None, :]).reshape(-1, 1)
        self.node_weights = (half * weights[None, :]).reshape(-1)

    # --- yields and densities --------------------------------------------------------
    def _yields(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Yields (K, P) and their derivatives (K, P, k)."""
        k_points, k = params.shape
        nus = np.empty((k_points, len(self.model.processes)))
        dnus = np.zeros((k_points, len(self.model.processes), k))
        for p, proc in enumerate(self.model.processes):
            scale = np.exp(params @ proc.log_kappa)
            rate = np.prod(params[:, proc.rates], axis=1) if proc.rates else np.ones(k_points)
            nus[:, p] = proc.events * rate * scale
            dnus[:, p, :] = nus[:, p, None] * proc.log_kappa[None, :]
            for r in proc.rates:
                others = [o for o in proc.rates if o != r]
                rest = np.prod(params[:, others], axis=1) if others else np.ones(k_points)
                dnus[:, p, r] += proc.events * rest * scale
        return nus, dnus

    def _densities(self, x: np.ndarray, params: np.ndarray, gradient: bool) -> list:
        """Per process: log densities (K, n) and their parameter gradients (K, n, k)."""
        out = []
        for proc in self.model.processes:
            conds = params @ proc.cond_matrix.T + proc.cond_offset
            value, grad = proc.density.evaluate(x, conds, gradient)
            out.append((value, grad @ proc.cond_matrix if gradient else None))
        return out

    def _event_terms(self, params: np.ndarray, gradient: bool):
        """ln s_i = ln sum_p nu_p f_p(x_i) (K, n) and d ln s_i / dtheta (K, n, k)."""
        nus, dnus = self._yields(params)
        dens = self._densities(self.x, params, gradient)
        with np.errstate(divide="ignore"):
            log_nu = np.log(nus)
        log_s = np.logaddexp.reduce(
            np.stack([log_nu[:, p, None] + v for p, (v, _) in enumerate(dens)]), axis=0
        )
        if not gradient:
            return nus, dnus, log_s, None
        dlog_s = np.zeros((*log_s.shape, params.shape[1]))
        with np.errstate(invalid="ignore"):
            for p, (value, grad) in enumerate(dens):
                q = np.exp(value - log_s)  # f_p / s
                dlog_s += q[..., None] * (dnus[:, p, None, :] + nus[:, p, None, None] * grad)
        return nus, dnus, log_s, dlog_s

    # --- the three likelihoods --------------------------------------------------------
    def _unbinned(self, params: np.ndarray, gradient: bool):
        nus, dnus, log_s, dlog_s = self._event_terms(params, gradient)
        total, dtotal = nus.sum(axis=1), dnus.sum(axis=1)
        if self.model.likelihood == "extended":
            value = 2 * (total - log_s @ self.w)
            grad = 2 * (dtotal - np.einsum("kni,n->ki", dlog_s, self.w)) if gradient else None
        else:
            value = -2 * (log_s @ self.w - self.w.sum() * np.log(total))
            if gradient:
                score = np.einsum("kni,n->ki", dlog_s, self.w)
                grad = -2 * (score - self.w.sum() * dtotal / total[:, None])
            else:
                grad = None
        return value, grad

    def _binned(self, params: np.ndarray, gradient: bool):
        nus, dnus = self._yields(params)
        n_bins = len(self.counts)
        mu = np.zeros((len(params), n_bins))
        dmu = np.zeros((len(params), n_bins, params.shape[1]))
        for p, (value, grad) in enumerate(self._densities(self.nodes, params, gradient)):
            f = np.exp(value) * self.node_weights
            integral = f.reshape(len(params), n_bins, NODES_PER_BIN).sum(axis=2)
            mu += nus[:, p, None] * integral
            if gradient:
                dint = (f[..., None] * grad).reshape(len(params), n_bins, NODES_PER_BIN, -1)
                dmu += dnus[:, p, None, :] * integral[..., None] + nus[:, p, None, None] * dint.sum(
                    axis=2
                )
        n = self.counts[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_term = np.where(n > 0, n * (np.log(np.where(n > 0, n, 1.0)) - np.log(mu)), 0.0)
        value = 2 * (mu - n + log_term).sum(axis=1)
        grad = 2 * np.einsum("kb,kbi->ki", 1 - n / mu, dmu) if gradient else None
        return value, grad

    def evaluate(
        self, params: np.ndarray, gradient: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``−2 ln L`` at every row of ``params`` (K, k) in batched calls; gradients (K, k).

        Nuisance constraints included. Rows are split into batches of at most
        :data:`BATCH_ELEMENTS` parameter points x events; a row with NaN or Inf gives NaN.
        """
        params = np.atleast_2d(np.asarray(params, np.float64))
        self.calls += len(params)
        value = np.full(len(params), np.nan)
        grad = np.full(params.shape, np.nan) if gradient else None
        finite = np.flatnonzero(np.isfinite(params).all(axis=1))  # a minimiser's NaN step
        step = max(1, BATCH_ELEMENTS // max(1, len(self.x)))
        fn = self._binned if self.model.likelihood == "binned" else self._unbinned
        mask = self.model.nuisances
        for start in range(0, len(finite), step):
            rows = finite[start : start + step]
            block = params[rows]
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero yield: ln 0 = -inf
                block_value, block_grad = fn(block, gradient)
            value[rows] = block_value + (block[:, mask] ** 2).sum(axis=1)
            if gradient:
                grad[rows] = block_grad + 2 * block * mask[None, :]
        return value, grad

    # --- Minuit's interface -----------------------------------------------------------
    def __call__(self, *params: float) -> float:
        """``−2 ln L`` at one point (Minuit's cost function)."""
        p = np.asarray(params, np.float64)
        if self._cache is not None and self._cache[0] == p.tobytes():
            return self._cache[1]
        value, _ = self.evaluate(p[None, :], gradient=False)
        return float(value[0])

    def grad(self, *params: float) -> np.ndarray:
        """Gradient of ``−2 ln L`` at one point (Minuit's ``grad``)."""
        p = np.asarray(params, np.float64)
        value, grad = self.evaluate(p[None, :], gradient=True)
        self._cache = (p.tobytes(), float(value[0]), grad[0])
        return grad[0]

    def scores(self, params: np.ndarray) -> np.ndarray:
        """Per-event derivative of the event's log-likelihood term (n, k) at ``params``.

        Extended: ``d ln sum_p nu_p f_p(x_i)``; shape: that minus ``d ln sum_p nu_p``.
        The sandwich covariance of a weighted fit is built from these.

        Raises:
            ConfigError: for the binned likelihood.
        """
        if self.model.likelihood == "binned":
            raise ConfigError("per-event scores (the weighted-fit covariance) need an unbinned fit")
        nus, dnus, _, dlog_s = self._event_terms(np.asarray(params, np.float64)[None, :], True)
        scores = dlog_s[0]
        if self.model.likelihood == "shape":
            scores = scores - (dnus.sum(axis=1) / nus.sum(axis=1)[:, None])[0][None, :]
        return scores
