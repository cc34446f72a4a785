"""Merge row results into ``training.plan.csv``; summary table and heat maps over the grid."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from fedhex_hpc.io_utils import write_text_atomic
from fedhex_hpc.studies.mixlearn.folder import StudyFolder
from fedhex_hpc.studies.mixlearn.plan import METRIC_COLUMNS
from fedhex_hpc.studies.report import draw_heatmap, grid_markdown, mean_pm_std, save_figure

__all__ = ["SUMMARY_METRICS", "collect", "merged_plan", "summarize"]

#: Metrics summarised (mean and std over models) per genuine x synthetic count.
SUMMARY_METRICS = ("accuracy", "loss")


def merged_plan(folder: StudyFolder) -> pd.DataFrame:
    """The plan with every finished row's metrics and ``done = 1``; other rows ``done = 0``."""
    table = folder.plan()
    results = [folder.result(index) for index in range(len(table))]
    table["done"] = [int(r is not None) for r in results]
    for metric in METRIC_COLUMNS:
        dtype = "Float64" if metric in ("accuracy", "loss") else "Int64"
        table[metric] = pd.array([r[metric] if r else None for r in results], dtype=dtype)
    return table


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count over models of each summary metric, per ``dsize`` x ``tsize``."""
    done = table[table["done"] == 1].astype({m: float for m in SUMMARY_METRICS})
    if done.empty:
        return pd.DataFrame()
    summary = done.groupby(["dsize", "tsize"])[list(SUMMARY_METRICS)].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary["models"] = done.groupby(["dsize", "tsize"]).size()
    return summary.reset_index()


def _markdown(summary: pd.DataFrame, metric: str) -> str:
    return grid_markdown(
        summary,
        "dsize",
        "tsize",
        lambda r: mean_pm_std(r[f"{metric}_mean"], r[f"{metric}_std"], 4),
        corner="genuine \\ synthetic",
    )


def _heatmaps(summary: pd.DataFrame, metric: str, path: Path) -> None:
    """Mean and std of ``metric`` over models, genuine count (rows) x synthetic count."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, stat in zip(fig.subplots(1, 2), ("mean", "std"), strict=True):
        grid = summary.pivot(index="dsize", columns="tsize", values=f"{metric}_{stat}")
        grid.index.name, grid.columns.name = "genuine training events", "synthetic training events"
        draw_heatmap(fig, ax, grid, "", origin="lower")
        ax.set_title(f"{stat} {metric} over models")
    save_figure(fig, path)


def collect(study_dir: str | Path) -> str:
    """Write the merged ``training.plan.csv``, ``summary.csv``/``.md`` and heat maps.

    Args:
        study_dir: The study folder.

    Returns:
        The done count and the accuracy table (mean ± std over models).
    """
    folder = StudyFolder(study_dir)
    table = merged_plan(folder)
    write_text_atomic(folder.plan_file, table.to_csv(index=False))
    done = int(table["done"].sum())
    text = f"{done} of {len(table)} rows done"
    summary = summarize(table)
    if summary.empty:
        return text + " (no summary yet)"
    write_text_atomic(folder.file("summary.csv"), summary.to_csv(index=False))
    tables = [
        f"test {metric} (mean ± std over models), genuine x synthetic training events\n\n"
        + _markdown(summary, metric)
        for metric in SUMMARY_METRICS
    ]
    write_text_atomic(folder.file("summary.md"), "\n\n".join(tables) + "\n")
    for metric in SUMMARY_METRICS:
        _heatmaps(summary, metric, folder.file("plots", f"{metric}.png"))
    return f"{text}\n\n{tables[0]}\n\nplots: {folder.file('plots')}"
