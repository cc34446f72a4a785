"""Maximum-likelihood fits with Minuit: MIGRAD with analytic gradients, HESSE, MINOS.

Values are ``−2 ln L`` with ``errordef = 1`` (see :mod:`fedhex_hpc.infer.nll`).
Weighted events get the sandwich covariance ``V D V`` with ``V`` the inverse
Hessian and ``D = sum_i w_i^2 s_i s_i^T`` from the per-event scores ``s_i``
(Langenbruch, arXiv:1911.01303, eq. 18); MINOS intervals are not corrected
for weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fedhex_hpc.infer.model import LikelihoodModel
from fedhex_hpc.infer.nll import NLL

__all__ = ["CONVENTION", "coarse_starts", "fit", "minuit", "profile_value"]

CONVENTION = "-2 ln L, errordef = 1"
#: Points per parameter of the coarse scan that picks a missing start value.
COARSE_POINTS = 21


def coarse_starts(nll: NLL, model: LikelihoodModel) -> np.ndarray:
    """Start values: the spec's, with each missing one the best of a coarse batched scan.

    Parameters without a start are scanned one after the other over their limits
    (:data:`COARSE_POINTS` points in one batched call), the others at their starts.
    """
    starts = model.starts.copy()
    for i in np.flatnonzero(np.isnan(starts)):
        low, high = model.limits[i]
        grid = np.linspace(low, high, COARSE_POINTS)
        points = np.repeat(np.nan_to_num(starts, nan=0.0)[None, :], len(grid), axis=0)
        for j in np.flatnonzero(np.isnan(starts)):
            points[:, j] = (model.limits[j][0] + model.limits[j][1]) / 2
        points[:, i] = grid
        values, _ = nll.evaluate(points, gradient=False)
        starts[i] = grid[int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))]
    return starts


def minuit(nll: NLL, model: LikelihoodModel, starts: np.ndarray | None = None):
    """A configured :class:`iminuit.Minuit` (limits, fixed parameters, gradient, errordef 1)."""
    from iminuit import Minuit

    starts = coarse_starts(nll, model) if starts is None else starts
    m = Minuit(nll, *starts, grad=nll.grad, name=model.names)  # errordef 1 from nll
    for name, limits, fixed in zip(model.names, model.limits, model.fixed, strict=True):
        m.limits[name] = limits
        m.fixed[name] = fixed
        low, high = limits
        if math.isfinite(low) and math.isfinite(high):
            m.errors[name] = (high - low) / 20
        else:
            m.errors[name] = max(0.1, 0.1 * abs(m.values[name]))
    return m


def _minos(m, name: str, sigmas: float) -> dict[str, Any]:
    """MINOS interval of ``name`` at ``sigmas`` standard deviations (relative to the best fit)."""
    try:
        m.minos(name, cl=sigmas)
    except RuntimeError as exc:  # MINOS refuses, e.g. at a limit
        return {"lower": None, "upper": None, "valid": False, "error": str(exc)}
    error = m.merrors[name]
    return {"lower": float(error.lower), "upper": float(error.upper), "valid": bool(error.is_valid)}


def _sandwich(nll: NLL, m, free: list[int]) -> np.ndarray:
    scores = nll.scores(np.array(m.values))[:, free]
    d = (scores * nll.w[:, None] ** 2).T @ scores
    v = np.array(m.covariance)[np.ix_(free, free)]
    return v @ d @ v


def _matrix(values: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in values]


def fit(
    nll: NLL,
    model: LikelihoodModel,
    minos: list[str] | None = None,
    starts: np.ndarray | None = None,
    sandwich: bool | None = None,
    minos_sigmas: tuple[float, ...] = (1.0,),
    max_calls: int = 0,
) -> dict[str, Any]:
    """Fit ``model`` to the events of ``nll``: MIGRAD, HESSE and MINOS.

    Args:
        nll: The cost (events bound).
        model: The parameters.
        minos: Parameters that get MINOS intervals (default: the free condition and
            rate parameters; ``[]`` for none).
        starts: Start values (default: :func:`coarse_starts`).
        sandwich: Use the sandwich covariance (default: when the events are weighted).
        minos_sigmas: MINOS levels in standard deviations; 1 is ``minos``, others
            ``minos_<n>sigma``.
        max_calls: Call limit of MIGRAD (0: Minuit's default); a fit stopped by it
            is not valid.

    Returns:
        A JSON-ready record: ``valid``, ``edm``, ``edm_goal``, ``minus_two_log_likelihood``,
        ``calls``, ``gradient_calls``, ``parameters`` (value, error, minos, fixed,
        limits per name), ``free``, ``covariance`` and ``correlations`` of the free
        parameters, ``covariance_kind`` and the ``convention``. A fit that does not
        converge has ``valid`` false (and no MINOS).
    """
    m = minuit(nll, model, starts)
    m.migrad(ncall=max_calls or None)
    if m.valid:
        m.hesse()
    free = [i for i, fixed in enumerate(model.fixed) if not fixed]
    if minos is None:
        minos = [model.names[i] for i in free if model.kinds[i] != "nuisance"]
    intervals: dict[str, dict[float, Any]] = {}
    if m.valid:
        for name in minos:
            model.index(name)
            for sigmas in minos_sigmas:
                intervals.setdefault(name, {})[sigmas] = _minos(m, name, sigmas)
    weighted = nll.weighted if sandwich is None else sandwich
    if m.covariance is not None and m.valid and free:
        cov = _sandwich(nll, m, free) if weighted else np.array(m.covariance)[np.ix_(free, free)]
    else:
        cov = np.full((len(free), len(free)), np.nan)
    errors = np.full(len(model.names), np.nan)
    errors[free] = np.sqrt(np.clip(np.diag(cov), 0, None))
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / scale
    params = {
        name: {
            "value": float(m.values[name]),
            "error": float(errors[i]),
            "hesse_error": float(m.errors[name]),
            "minos": intervals.get(name, {}).get(1.0),
            **{
                f"minos_{sigmas:g}sigma": interval
                for sigmas, interval in intervals.get(name, {}).items()
                if sigmas != 1.0
            },
            "fixed": bool(model.fixed[i]),
            "limits": [float(v) if math.isfinite(v) else None for v in model.limits[i]],
            "kind": model.kinds[i],
        }
        for i, name in enumerate(model.names)
    }
    fmin = m.fmin
    return {
        "convention": CONVENTION,
        "likelihood": model.likelihood,
        "model": model.name,
        "valid": bool(m.valid),
        "edm": float(fmin.edm),
        "edm_goal": float(fmin.edm_goal),
        "minus_two_log_likelihood": float(fmin.fval),
        "calls": int(m.nfcn),
        "gradient_calls": int(m.ngrad),
        "events": len(nll.x),
        "sum_weights": float(nll.w.sum()),
        "covariance_kind": "sandwich" if weighted else "hesse",
        "parameters": params,
        "free": [model.names[i] for i in free],
        "covariance": _matrix(cov),
        "correlations": _matrix(corr),
        "minos_note": "MINOS is not corrected for event weights" if weighted else "",
    }


def profile_value(
    nll: NLL, model: LikelihoodModel, fixed: dict[str, float], starts: np.ndarray
) -> tuple[float, bool, np.ndarray]:
    """Minimum of ``−2 ln L`` with the parameters in ``fixed`` held at their values.

    Returns:
        ``(value, valid, best-fit values)``; without free parameters left, the value
        at the point (valid).
    """
    start = np.array(starts, np.float64)
    for name, value in fixed.items():
        start[model.index(name)] = value
    held = [model.fixed[i] or name in fixed for i, name in enumerate(model.names)]
    if all(held):
        return float(nll.evaluate(start[None, :], gradient=False)[0][0]), True, start
    m = minuit(nll, model, start)
    for name in fixed:
        m.fixed[name] = True
    m.migrad()
    return float(m.fval), bool(m.valid), np.array(m.values)
