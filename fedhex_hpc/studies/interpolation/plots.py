"""Plots of an interpolation study (PNG and PDF each).

* ``plots/points/<fold>-<point>``: per judged point and feature, the truth and the
  flow, nearest-point and morphed histograms with a ratio-to-truth panel;
* ``plots/map`` (label points spanning a plane): each metric over the label plane,
  training points as dots, held-out points as circles, controls as squares,
  extrapolated points outlined in red;
* ``plots/vs_label`` (label points on a line): the metrics against the label for
  the three methods, training points as ticks, extrapolated points hollow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fedhex_hpc.studies.interpolation.folder import InterpolationFolder
from fedhex_hpc.studies.interpolation.geometry import LabelSpace
from fedhex_hpc.studies.interpolation.study import METHODS
from fedhex_hpc.studies.report import save_figure

__all__ = ["MAP_METRICS", "draw_all", "draw_map", "draw_point", "draw_vs_label"]

_STYLE = {"flow": "C0", "nearest": "C1", "morph": "C2"}
#: (column, method, title) of each panel of the map and of the line plot.
MAP_METRICS = (
    ("goal_mean", "flow", "flow |Δmean|/σ (worst feature)"),
    ("goal_sigma", "flow", "flow |Δσ|/σ (worst feature)"),
    ("auc", "flow", "flow classifier AUC"),
    ("goal_mean", "morph", "morphing |Δmean|/σ"),
)


def draw_point(point: dict[str, Any], features: list[str], path: Path) -> list[Path]:
    """Truth vs flow vs baselines at one point, per feature, with ratio panels."""
    d = len(features)
    fig = Figure(figsize=(4.5 * d, 5.0), layout="constrained")
    axes = fig.subplots(2, d, squeeze=False, height_ratios=[3, 1], sharex="col")
    for j, name in enumerate(features):
        truth = point["truth_hist"][j]
        edges = np.asarray(truth["edges"])
        width = np.diff(edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        t_counts = np.asarray(truth["counts"], dtype=float)
        t_density = t_counts / truth["n"] / width
        t_error = np.sqrt(t_counts) / truth["n"] / width
        top, bottom = axes[0, j], axes[1, j]
        top.errorbar(centres, t_density, t_error, fmt="k.", ms=3, label="truth")
        for method in METHODS:
            hist = point["methods"][method]["hist"][j]
            density = np.asarray(hist["counts"]) / hist["n"] / width
            top.stairs(density, edges, color=_STYLE[method], label=method)
            with np.errstate(divide="ignore", invalid="ignore"):
                bottom.stairs(density / t_density, edges, color=_STYLE[method])
        with np.errstate(divide="ignore", invalid="ignore"):
            band = t_error / t_density
        bottom.fill_between(
            edges,
            np.append(1 - band, 1 - band[-1]),
            np.append(1 + band, 1 + band[-1]),
            step="post",
            color="0.8",
        )
        bottom.axhline(1.0, color="k", lw=0.5)
        bottom.set_ylim(0.5, 1.5)
        bottom.set_xlabel(name)
        bottom.set_ylabel("ratio to truth")
        top.set_ylabel("density")
        top.legend(fontsize=7)
    flag = ", extrapolation" if point["extrapolation"] else ""
    fig.suptitle(f"{point['label']} ({point['role']}{flag})")
    return save_figure(fig, path)


def _scatter(fig: Figure, ax, meta: dict, fold_table: pd.DataFrame, column: str, title: str):
    points = np.asarray(meta["points"])
    training = sorted({i for f in meta["folds"] for i in f["training"]})
    ax.scatter(points[training, 0], points[training, 1], s=8, c="0.6", label="training")
    values = fold_table[column].astype(float)
    xs, ys = fold_table[meta["labels"][0]], fold_table[meta["labels"][1]]
    marker = np.where(fold_table["role"] == "heldout", "o", "s")
    edge = np.where(fold_table["extrapolation"], "red", "k")
    image = None
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    for m in ("o", "s"):
        sel = marker == m
        if sel.any():
            image = ax.scatter(
                xs[sel],
                ys[sel],
                c=values[sel],
                marker=m,
                s=90,
                edgecolors=edge[sel],
                linewidths=1.5,
                cmap="viridis",
                vmin=vmin,
                vmax=vmax,
                label="held out" if m == "o" else "control",
            )
    if image is not None:
        fig.colorbar(image, ax=ax)
    ax.set_xlabel(meta["labels"][0])
    ax.set_ylabel(meta["labels"][1])
    ax.set_title(title, fontsize=9)


def draw_map(meta: dict, table: pd.DataFrame, path: Path) -> list[Path]:
    """Each metric of :data:`MAP_METRICS` over the label plane."""
    fig = Figure(figsize=(11, 9), layout="constrained")
    for ax, (column, method, title) in zip(fig.subplots(2, 2).ravel(), MAP_METRICS, strict=True):
        _scatter(fig, ax, meta, table[table["method"] == method], column, title)
    handles, names = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle("red outline: outside the training points' convex hull (extrapolation)")
    return save_figure(fig, path)


def draw_vs_label(meta: dict, table: pd.DataFrame, path: Path) -> list[Path]:
    """The metrics against the (first) label for the three methods."""
    label = meta["labels"][0]
    points = np.asarray(meta["points"])
    training = sorted({i for f in meta["folds"] for i in f["training"]})
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    panels = (("goal_mean", "|Δmean|/σ"), ("goal_sigma", "|Δσ|/σ"), ("auc", "classifier AUC"))
    for ax, (column, title) in zip(fig.subplots(1, 3), panels, strict=True):
        for method in METHODS:
            rows = table[table["method"] == method].sort_values(label)
            error = rows.get(f"{column}_err")
            ax.errorbar(rows[label], rows[column], error, fmt="none", ecolor=_STYLE[method])
            for extrapolated, face in ((False, _STYLE[method]), (True, "none")):
                sel = rows["extrapolation"] == extrapolated
                ax.scatter(
                    rows[label][sel],
                    rows[column][sel],
                    facecolors=face,
                    edgecolors=_STYLE[method],
                    label=method if not extrapolated else None,
                )
        for x in points[training, 0]:
            ax.axvline(x, color="0.85", lw=0.8, zorder=0)
        if column != "auc":
            ax.axhline(float(meta["spec"]["judge"]["goal"]), color="k", ls="--", lw=0.8)
            ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_title(title)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle("grey lines: training points; hollow: extrapolation")
    return save_figure(fig, path)


def draw_all(folder: InterpolationFolder, meta: dict, table: pd.DataFrame) -> list[Path]:
    """Every plot of the study's finished folds; the paths written."""
    made: list[Path] = []
    plots = folder.file("plots")
    for fold in range(len(meta["folds"])):
        result = folder.result(fold) or {}
        for point in result.get("points", []):
            name = f"{fold}-{point['index']}-{point['role']}.png"
            made += draw_point(point, meta["features"], plots / "points" / name)
    space = LabelSpace(np.asarray(meta["points"]), np.asarray(meta["points"]))
    if space.dim >= 2 and len(meta["labels"]) == 2:
        made += draw_map(meta, table, plots / "map.png")
    else:
        made += draw_vs_label(meta, table, plots / "vs_label.png")
    return made
