"""What every study kind's collect step draws and writes: grid tables, heat maps, figures.

Figures are saved atomically as PNG and PDF side by side; tables are pandas
frames turned into markdown here, so every kind's summary reads alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fedhex_hpc.evaluate import plots as evaluate_plots

__all__ = ["FIGURE_FORMATS", "draw_heatmap", "grid_markdown", "mean_pm_std", "save_figure"]

FIGURE_FORMATS = ("png", "pdf")


def save_figure(fig: Figure, path: str | Path) -> list[Path]:
    """Write ``fig`` atomically as ``path`` with each suffix of :data:`FIGURE_FORMATS`."""
    return evaluate_plots.save_figure(fig, path, FIGURE_FORMATS)


def mean_pm_std(mean: float, std: float, digits: int = 3) -> str:
    """``mean ± std`` (a missing std, from a single run, prints as 0)."""
    return f"{mean:.{digits}f} ± {np.nan_to_num(std):.{digits}f}"


def grid_markdown(
    table: pd.DataFrame,
    rows: str,
    columns: str,
    cell: Callable[[pd.Series], str],
    corner: str = "",
) -> str:
    """A markdown table with one line per value of ``rows`` and one column per ``columns``.

    Args:
        table: One record per (rows, columns) pair.
        rows, columns: The columns of ``table`` spanning the grid.
        cell: Text of a cell from its record.
        corner: Header of the first column (default ``rows \\ columns``).
    """
    values = sorted(table[columns].unique())
    corner = corner or rows + " \\ " + columns
    lines = [
        f"| {corner} | " + " | ".join(map(str, values)) + " |",
        "|---|" + "---|" * len(values),
    ]
    for value, group in table.groupby(rows):
        cells = []
        for col in values:
            hit = group[group[columns] == col]
            cells.append(cell(hit.iloc[0]) if len(hit) else "-")
        lines.append(f"| {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def draw_heatmap(
    fig: Figure, ax: Axes, grid: pd.DataFrame, label: str, origin: str = "upper"
) -> None:
    """``grid`` (index = rows, columns = columns) as an annotated image with a colour bar."""
    values = grid.to_numpy(dtype=float)
    image = ax.imshow(values, origin=origin, aspect="auto", cmap="viridis")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(str(grid.columns.name))
    ax.set_ylabel(str(grid.index.name))
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            color = "k" if image.norm(value) > 0.5 else "w"  # readable on viridis
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color=color, fontsize=8)
    fig.colorbar(image, ax=ax, label=label)
