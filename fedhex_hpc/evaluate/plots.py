"""Diagnostic plots for trained flows, written as PNG files.

Figures are built as ``matplotlib.figure.Figure`` objects (no global pyplot state, no
display needed) and written atomically: a temporary file in the target directory is
renamed over the destination, so a crash never leaves a half-written PNG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fedhex_hpc.evaluate._validation import (
    as_1d,
    as_2d,
    check_names,
    check_same_features,
    common_edges,
)
from fedhex_hpc.io_utils import atomic_path

__all__ = [
    "bounds_from_samples",
    "plot_density_2d",
    "plot_loss_curves",
    "plot_marginals",
    "save_figure",
]

LogDensityFn = Callable[[np.ndarray], np.ndarray]
Bounds2D = tuple[tuple[float, float], tuple[float, float]]

_MAX_COLUMNS = 4


def save_figure(
    fig: Figure, path: str | os.PathLike[str], formats: Sequence[str] = ("png",)
) -> list[Path]:
    """Write ``fig`` atomically as ``path`` in each of ``formats`` (the suffix follows it).

    Returns:
        The files written, in the order of ``formats``.
    """
    stem = Path(path).with_suffix("")
    written = []
    for fmt in formats:
        out = stem.with_suffix(f".{fmt}")
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120)
        written.append(out)
    return written


def plot_loss_curves(
    history: pd.DataFrame, path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Plot training (and, if present, validation) loss against epoch.

    Args:
        history: One row per epoch with columns ``epoch`` and ``loss`` and optionally
            ``val_loss``.
        path: Output PNG path.
        title: Optional figure title.

    Returns:
        The path written.

    Raises:
        ValueError: If ``history`` is empty or lacks the ``epoch`` or ``loss`` column.
    """
    missing = [c for c in ("epoch", "loss") if c not in history.columns]
    if missing:
        raise ValueError(
            f"history: expected columns epoch, loss, got {', '.join(map(str, history.columns))}"
        )
    if history.empty:
        raise ValueError("history: expected at least one epoch, got an empty table")
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(history["epoch"], history["loss"], marker=".", label="training")
    if "val_loss" in history.columns and history["val_loss"].notna().any():
        ax.plot(history["epoch"], history["val_loss"], marker=".", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return save_figure(fig, path)[0]


def _density_on_grid(fn: LogDensityFn, points: np.ndarray, name: str) -> np.ndarray:
    """Evaluate a log-density function on grid points; return densities (0 for -inf)."""
    log_d = as_1d(fn(points), name, finite=False)
    if log_d.shape != (len(points),):
        raise ValueError(f"{name}: expected shape ({len(points)},), got {log_d.shape}")
    if np.any(np.isnan(log_d) | (log_d == np.inf)):
        raise ValueError(f"{name}: expected finite log densities or -inf, got NaN or +inf")
    return np.exp(log_d)


def plot_density_2d(
    log_p_fn: LogDensityFn,
    log_q_fn: LogDensityFn,
    bounds: Bounds2D,
    path: str | os.PathLike[str],
    grid: int = 200,
    names: tuple[str, str] = ("x0", "x1"),
) -> Path:
    """Heat maps of a 2-d target density, the model density and their difference.

    Args:
        log_p_fn: Target log density; maps an ``(n, 2)`` array to ``(n,)`` values
            (``-inf`` where the density is zero).
        log_q_fn: Model log density, same convention.
        bounds: ``((x0_lo, x0_hi), (x1_lo, x1_hi))`` of the plotted region.
        path: Output PNG path.
        grid: Number of grid points per axis.
        names: Axis labels.

    Returns:
        The path written.

    Raises:
        ValueError: On invalid bounds or grid size, or if a function returns the wrong
            shape, NaN or ``+inf``.
    """
    limits = np.asarray(bounds, dtype=np.float64)
    if limits.shape != (2, 2) or not np.all(np.isfinite(limits)):
        raise ValueError(f"bounds: expected finite ((lo, hi), (lo, hi)), got {bounds!r}")
    if np.any(limits[:, 0] >= limits[:, 1]):
        raise ValueError(f"bounds: expected lo < hi on both axes, got {bounds!r}")
    if grid < 2:
        raise ValueError(f"grid: expected at least 2 points per axis, got {grid}")
    x0, x1 = (np.linspace(lo, hi, grid) for lo, hi in limits)
    mesh0, mesh1 = np.meshgrid(x0, x1)
    points = np.column_stack([mesh0.ravel(), mesh1.ravel()])
    p = _density_on_grid(log_p_fn, points, "log_p_fn").reshape(grid, grid)
    q = _density_on_grid(log_q_fn, points, "log_q_fn").reshape(grid, grid)
    diff = q - p
    vmax = max(float(p.max()), float(q.max())) or 1.0
    dmax = float(np.abs(diff).max()) or 1.0
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (
        ("target p", p, "viridis", 0.0, vmax),
        ("model q", q, "viridis", 0.0, vmax),
        ("q - p", diff, "RdBu_r", -dmax, dmax),
    )
    for ax, (label, values, cmap, lo, hi) in zip(axes, panels, strict=True):
        image = ax.imshow(
            values,
            origin="lower",
            extent=(*limits[0], *limits[1]),
            aspect="auto",
            cmap=cmap,
            vmin=lo,
            vmax=hi,
        )
        fig.colorbar(image, ax=ax)
        ax.set_title(label)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    return save_figure(fig, path)[0]


def plot_marginals(
    generated: np.ndarray,
    reference: np.ndarray,
    names: Sequence[str],
    path: str | os.PathLike[str],
    bins: int = 50,
) -> Path:
    """Grid of per-feature histograms of generated versus reference events.

    Reference counts are drawn filled, generated counts as a step line scaled to the
    reference total; both use common bins spanning the union of the two samples.

    Args:
        generated: Events sampled from the model, shape ``(n, d)``.
        reference: Reference events, shape ``(m, d)``.
        names: One name per feature.
        path: Output PNG path.
        bins: Number of bins per feature.

    Returns:
        The path written.

    Raises:
        ValueError: On empty or non-finite input, mismatched feature counts or a wrong
            number of names.
    """
    generated = as_2d(generated, "generated")
    reference = as_2d(reference, "reference")
    check_same_features(generated, reference, "generated", "reference")
    names = check_names(list(names), generated.shape[1])
    n_features = len(names)
    ncols = min(n_features, _MAX_COLUMNS)
    nrows = math.ceil(n_features / ncols)
    fig = Figure(figsize=(3.5 * ncols, 3.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    scale = len(reference) / len(generated)
    for j, (ax, name) in enumerate(zip(axes, names, strict=False)):
        edges = common_edges(generated[:, j], reference[:, j], bins)
        ref_counts, _ = np.histogram(reference[:, j], bins=edges)
        gen_counts, _ = np.histogram(generated[:, j], bins=edges)
        ax.stairs(ref_counts, edges, fill=True, alpha=0.4, label="reference")
        ax.stairs(gen_counts * scale, edges, color="C3", label="generated")
        ax.set_xlabel(name)
        ax.set_ylabel("events")
    for ax in axes[n_features:]:
        ax.set_visible(False)
    axes[0].legend()
    return save_figure(fig, path)[0]


def bounds_from_samples(
    x: np.ndarray, pad: float = 0.1, quantile: float = 0.001
) -> list[tuple[float, float]]:
    """Per-feature plotting ranges from quantiles of a sample, widened by a margin.

    Args:
        x: Samples, shape ``(n, d)``.
        pad: Margin added on each side as a fraction of the quantile range.
        quantile: Lower quantile; the upper one is ``1 - quantile``. Trims outliers.

    Returns:
        One ``(lo, hi)`` per feature with ``lo < hi`` (a constant feature gets ±0.5).

    Raises:
        ValueError: On empty or non-finite input, ``pad < 0`` or ``quantile`` outside
            ``[0, 0.5)``.
    """
    x = as_2d(x, "x")
    if pad < 0:
        raise ValueError(f"pad: expected a non-negative fraction, got {pad}")
    if not 0.0 <= quantile < 0.5:
        raise ValueError(f"quantile: expected a value in [0, 0.5), got {quantile}")
    lo, hi = np.quantile(x, [quantile, 1.0 - quantile], axis=0)
    width = hi - lo
    margin = np.where(width > 0, pad * width, 0.5)
    return [(float(a), float(b)) for a, b in zip(lo - margin, hi + margin, strict=True)]
