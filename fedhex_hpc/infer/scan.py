"""Profile-likelihood scans in one and two parameters, their intervals, CSV files and plots.

The grid spans ``±width`` HESSE errors around the best fit (clipped to the
limits). At each point the other free parameters are profiled (MIGRAD from the
neighbouring point's optimum); with none left, the whole grid is one batched
evaluation. ``delta`` is ``−2 ln L`` minus its minimum over the best fit and the
grid. The 1σ and 2σ intervals are where ``delta`` crosses 1 and 4 (linear
interpolation between grid points); 2D contours are drawn at 2.30 and 6.18
(68.27% and 95.45% for two parameters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.infer.fit import profile_value
from fedhex_hpc.infer.model import LikelihoodModel
from fedhex_hpc.infer.nll import NLL
from fedhex_hpc.io_utils import atomic_path

__all__ = [
    "crossings",
    "grid_for",
    "grid_points",
    "profile_table",
    "scan_1d",
    "scan_2d",
    "summary_1d",
    "write_scan",
]

LEVELS_1D = {"1sigma": 1.0, "2sigma": 4.0}
LEVELS_2D = (2.30, 6.18)


def grid_for(
    result: dict[str, Any], model: LikelihoodModel, name: str, points: int, width: float
) -> np.ndarray:
    """``points`` values over ``best ± width * error`` of ``name``, clipped to its limits.

    Raises:
        ConfigError: the parameter is fixed or has no finite error.
    """
    i = model.index(name)
    info = result["parameters"][name]
    if model.fixed[i] or not np.isfinite(info["error"]) or info["error"] <= 0:
        raise ConfigError(f"cannot scan {name}: it is fixed or the fit gave it no error")
    low, high = model.limits[i]
    lo = max(low, info["value"] - width * info["error"])
    hi = min(high, info["value"] + width * info["error"])
    return np.linspace(lo, hi, points)


def grid_points(
    result: dict[str, Any],
    model: LikelihoodModel,
    names: list[str],
    points: int,
    width: float,
) -> np.ndarray:
    """The scan grid of one or two parameters: (points, 1) or the (points², 2) mesh rows."""
    if len(names) == 2 and names[0] == names[1]:
        raise ConfigError(f"--param and --param2 are both {names[0]}")
    axes = [grid_for(result, model, n, points, width) for n in names]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(names))


def profile_table(
    result: dict[str, Any],
    names: list[str],
    points: np.ndarray,
    values: np.ndarray,
    valid: np.ndarray,
) -> pd.DataFrame:
    """The scan table: a column per scanned parameter, ``minus_two_log_likelihood``,
    ``delta`` (above the minimum of the fit and the grid) and ``valid``."""
    minimum = min(result["minus_two_log_likelihood"], float(np.min(values)))
    return pd.DataFrame(
        {
            **{name: points[:, k] for k, name in enumerate(names)},
            "minus_two_log_likelihood": values,
            "delta": values - minimum,
            "valid": valid,
        }
    )


def summary_1d(table: pd.DataFrame, result: dict[str, Any], name: str) -> dict[str, Any]:
    """Best value, minimum, convention and the 1σ and 2σ intervals of a 1D scan table."""
    grid, delta = table[name].to_numpy(), table["delta"].to_numpy()
    minimum = float(np.min(table["minus_two_log_likelihood"] - table["delta"]))
    return {
        "parameter": name,
        "best": result["parameters"][name]["value"],
        "minimum": minimum,
        "convention": result["convention"],
        "intervals": {
            label: dict(zip(("lower", "upper"), crossings(grid, delta, level), strict=True))
            for label, level in LEVELS_1D.items()
        },
    }


def _profile_line(
    nll: NLL, model: LikelihoodModel, names: list[str], points: np.ndarray, best: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Profiled ``−2 ln L`` and validity at each row of ``points`` (values of ``names``)."""
    idx = [model.index(n) for n in names]
    others_free = any(not model.fixed[i] and i not in idx for i in range(len(model.names)))
    if not others_free:
        full = np.repeat(best[None, :], len(points), axis=0)
        full[:, idx] = points
        values, _ = nll.evaluate(full, gradient=False)
        return values, np.ones(len(points), bool)
    values, valid = np.empty(len(points)), np.empty(len(points), bool)
    # from the point nearest the best fit outwards, each starting at its neighbour's optimum
    centre = int(np.argmin(np.abs(points - best[idx]).sum(axis=1)))
    for order in (range(centre, len(points)), range(centre - 1, -1, -1)):
        start = best
        for j in order:
            values[j], valid[j], start = profile_value(
                nll, model, dict(zip(names, points[j], strict=True)), start
            )
    return values, valid


def crossings(grid: np.ndarray, delta: np.ndarray, level: float) -> tuple[float, float]:
    """Lower and upper points where ``delta`` crosses ``level`` around its minimum (NaN: none)."""
    j = int(np.argmin(delta))
    lower = upper = np.nan
    for a in range(j, 0, -1):
        if delta[a - 1] >= level > delta[a] or delta[a - 1] > level >= delta[a]:
            t = (level - delta[a]) / (delta[a - 1] - delta[a])
            lower = grid[a] + t * (grid[a - 1] - grid[a])
            break
    for b in range(j, len(grid) - 1):
        if delta[b + 1] >= level > delta[b] or delta[b + 1] > level >= delta[b]:
            t = (level - delta[b]) / (delta[b + 1] - delta[b])
            upper = grid[b] + t * (grid[b + 1] - grid[b])
            break
    return float(lower), float(upper)


def scan_1d(
    nll: NLL,
    model: LikelihoodModel,
    result: dict[str, Any],
    name: str,
    points: int = 41,
    width: float = 4.0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Profile ``name`` over :func:`grid_for`; the table and its intervals.

    Returns:
        ``(table, summary)``: columns ``name, minus_two_log_likelihood, delta, valid``;
        the summary holds the best value, the minimum and per level the interval
        ``[lower, upper]`` (NaN where the grid does not reach the crossing).
    """
    grid = grid_points(result, model, [name], points, width)
    best = np.array([p["value"] for p in result["parameters"].values()])
    values, valid = _profile_line(nll, model, [name], grid, best)
    table = profile_table(result, [name], grid, values, valid)
    return table, summary_1d(table, result, name)


def scan_2d(
    nll: NLL,
    model: LikelihoodModel,
    result: dict[str, Any],
    names: tuple[str, str],
    points: int = 21,
    width: float = 3.0,
) -> pd.DataFrame:
    """Profile two parameters on a ``points x points`` grid; columns as in :func:`scan_1d`."""
    mesh = grid_points(result, model, list(names), points, width)
    best = np.array([p["value"] for p in result["parameters"].values()])
    values, valid = _profile_line(nll, model, list(names), mesh, best)
    return profile_table(result, list(names), mesh, values, valid)


def write_scan(table: pd.DataFrame, path: str | Path, names: list[str]) -> list[Path]:
    """Write the scan as ``path`` (CSV) and a plot beside it (PNG and PDF).

    A 1D plot shows ``delta`` with lines at 1 and 4; a 2D plot the contours at
    2.30 and 6.18 and the best point.
    """
    from matplotlib.figure import Figure

    from fedhex_hpc.evaluate.plots import save_figure

    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.add_subplot()
    if len(names) == 1:
        ax.plot(table[names[0]], table["delta"], "o-", ms=3)
        for level, label in ((1.0, "1σ"), (4.0, "2σ")):
            ax.axhline(level, color="grey", ls="--", lw=1)
            ax.text(table[names[0]].iloc[0], level, label, va="bottom", fontsize=8)
        ax.set_ylabel("Δ(−2 ln L)")
        ax.set_xlabel(names[0])
    else:
        n = round(np.sqrt(len(table)))
        grid = {c: table[c].to_numpy().reshape(n, n) for c in (*names, "delta")}
        ax.contour(grid[names[0]], grid[names[1]], grid["delta"], levels=LEVELS_2D)
        j = int(np.argmin(table["delta"]))
        ax.plot(table[names[0]].iloc[j], table[names[1]].iloc[j], "k+")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title("68.27% and 95.45% contours", fontsize=9)
    fig.tight_layout()
    return [path, *save_figure(fig, path.with_suffix(""), ("png", "pdf"))]
