"""``fedhex sweep status`` and ``fedhex sweep collect``: what ran, and the merged results."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fedhex_hpc.io_utils import atomic_path, write_text_atomic
from fedhex_hpc.sweeps.folder import SweepFolder

__all__ = ["STATES", "collect", "status", "task_ids_by_state"]

STATES = ("pending", "running", "done", "failed")


def task_ids_by_state(sweep: SweepFolder) -> dict[str, list[int]]:
    """Task ids grouped by state."""
    groups: dict[str, list[int]] = defaultdict(list)
    for row in sweep.plan():
        groups[sweep.state(row.task_id)].append(row.task_id)
    return {state: groups.get(state, []) for state in STATES}


def _ids(ids: list[int]) -> str:
    return ",".join(map(str, ids)) if len(ids) <= 30 else f"{ids[0]}..{ids[-1]} ({len(ids)})"


def status(sweep_dir: str | Path) -> str:
    """Counts and ids per state, with each failed task's last error line."""
    sweep = SweepFolder(sweep_dir)
    groups = task_ids_by_state(sweep)
    total = sum(len(v) for v in groups.values())
    lines = [f"sweep {sweep.meta()['name']} in {sweep.path}: {total} tasks"]
    for state in STATES:
        ids = groups[state]
        lines.append(f"  {state:<8}{len(ids):>6}" + (f"  ids {_ids(ids)}" if ids else ""))
    lines += [f"  task {i}: {sweep.failure(i)}" for i in groups["failed"]]
    return "\n".join(lines)


def _merged_table(sweep: SweepFolder) -> pd.DataFrame:
    records = []
    for row in sweep.plan():
        result = sweep.result(row.task_id) or {}
        records.append(
            {
                "task_id": row.task_id,
                "key": row.key,
                **row.axes,
                "state": sweep.state(row.task_id),
                **{k: v for k, v in result.items() if k not in ("task_id", "key")},
                "done": bool(result.get("done", False)),
            }
        )
    return pd.DataFrame.from_records(records)


def _summary(table: pd.DataFrame, rows: str, columns: str, metric: str) -> pd.DataFrame:
    done = table[table["done"]]
    if done.empty or metric not in done:
        return pd.DataFrame()
    keys = [k for k in (rows, columns) if k]
    return done.groupby(keys)[metric].agg(["mean", "std", "count"]).reset_index()


def _markdown(summary: pd.DataFrame, rows: str, columns: str, metric: str) -> str:
    if summary.empty:
        return "(no finished tasks yet)"
    if not columns:
        lines = [f"| {rows} | {metric} |", "|---|---|"]
        lines += [
            f"| {r[rows]} | {r['mean']:.4f} ± {np.nan_to_num(r['std']):.4f} |"
            for _, r in summary.iterrows()
        ]
        return "\n".join(lines)
    cols = sorted(summary[columns].unique())
    lines = [
        f"| {rows} \\ {columns} | " + " | ".join(map(str, cols)) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for value, group in summary.groupby(rows):
        cells = []
        for col in cols:
            hit = group[group[columns] == col]
            cells.append(
                f"{hit['mean'].iloc[0]:.3f} ± {np.nan_to_num(hit['std'].iloc[0]):.3f}"
                if len(hit)
                else "-"
            )
        lines.append(f"| {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def _heatmap(summary: pd.DataFrame, rows: str, columns: str, metric: str, path: Path) -> None:
    grid = summary.pivot(index=rows, columns=columns, values="mean")
    fig = Figure(
        figsize=(3.5 + 1.1 * grid.shape[1], 1.5 + 0.5 * grid.shape[0]), layout="constrained"
    )
    ax = fig.add_subplot()
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(columns)
    ax.set_ylabel(rows)
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax, label=f"mean {metric}")
    _save(fig, path)


def _loss_curves(sweep: SweepFolder, table: pd.DataFrame, rows: str, path: Path) -> None:
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    groups = sorted(table[rows].astype(str).unique()) if rows else [""]
    colors = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    for _, task in table[table["done"]].iterrows():
        history = sweep.path / task["run_dir"] / "history.csv"
        if history.is_file():
            frame = pd.read_csv(history)
            group = str(task[rows]) if rows else ""
            ax.plot(frame["epoch"], frame["val_loss"], color=colors[group], lw=0.8, alpha=0.7)
    for group, color in colors.items():
        ax.plot([], [], color=color, label=group or "val_loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.legend(fontsize=7)
    _save(fig, path)


def collect(sweep_dir: str | Path) -> str:
    """Write results.csv (every task, with a ``done`` flag), the summary table and plots.

    Returns:
        The summary as a markdown table, preceded by the done count.
    """
    sweep = SweepFolder(sweep_dir)
    meta = sweep.meta()
    table = _merged_table(sweep)
    write_text_atomic(sweep.file("results.csv"), table.to_csv(index=False))
    summary_spec = meta["summary"]
    rows, columns, metric = summary_spec["rows"], summary_spec["columns"], summary_spec["metric"]
    text = f"{int(table['done'].sum())} of {len(table)} tasks done"
    if rows:
        summary = _summary(table, rows, columns, metric)
        write_text_atomic(sweep.file("summary.csv"), summary.to_csv(index=False))
        markdown = _markdown(summary, rows, columns, metric)
        write_text_atomic(sweep.file("summary.md"), markdown + "\n")
        text += f"\n\nmean {metric} by {rows}" + (f" x {columns}" if columns else "")
        text += "\n\n" + markdown
        if columns and not summary.empty:
            _heatmap(summary, rows, columns, metric, sweep.file("summary.png"))
    if table["done"].any():
        _loss_curves(sweep, table, rows, sweep.file("losses.png"))
    return text
