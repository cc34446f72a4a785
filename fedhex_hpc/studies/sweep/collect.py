"""``fedhex sweep status``, ``collect`` and ``best``: what ran, the merged results, the winners."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.evaluate.catalog import metric
from fedhex_hpc.io_utils import write_json_atomic, write_text_atomic
from fedhex_hpc.studies.base import status_text
from fedhex_hpc.studies.report import draw_heatmap, grid_markdown, mean_pm_std, save_figure
from fedhex_hpc.studies.sweep.folder import SweepFolder

__all__ = ["best", "collect", "merged_table", "status", "task_ids_by_state"]


def task_ids_by_state(sweep: SweepFolder) -> dict[str, list[int]]:
    """Task ids grouped by state."""
    return sweep.ids_by_state([row.task_id for row in sweep.plan()])


def status(sweep_dir: str | Path) -> str:
    """Counts and ids per state, with each failed task's last error line."""
    sweep = SweepFolder(sweep_dir)
    return status_text(sweep, sweep.meta()["name"], [row.task_id for row in sweep.plan()])


def merged_table(sweep: SweepFolder) -> pd.DataFrame:
    """One record per task: id, key, axes, state, result fields and a ``done`` flag."""
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


def _summary(table: pd.DataFrame, rows: str, columns: str, name: str) -> pd.DataFrame:
    done = table[table["done"]]
    if done.empty or name not in done:
        return pd.DataFrame()
    keys = [k for k in (rows, columns) if k]
    return done.groupby(keys)[name].agg(["mean", "std", "count"]).reset_index()


def _markdown(summary: pd.DataFrame, rows: str, columns: str, name: str) -> str:
    if summary.empty:
        return "(no finished tasks yet)"
    if not columns:
        lines = [f"| {rows} | {name} |", "|---|---|"]
        lines += [
            f"| {r[rows]} | {mean_pm_std(r['mean'], r['std'], 4)} |" for _, r in summary.iterrows()
        ]
        return "\n".join(lines)
    return grid_markdown(summary, rows, columns, lambda r: mean_pm_std(r["mean"], r["std"]))


def _heatmap(summary: pd.DataFrame, rows: str, columns: str, name: str, path: Path) -> None:
    grid = summary.pivot(index=rows, columns=columns, values="mean")
    fig = Figure(
        figsize=(3.5 + 1.1 * grid.shape[1], 1.5 + 0.5 * grid.shape[0]), layout="constrained"
    )
    draw_heatmap(fig, fig.add_subplot(), grid, f"mean {name}")
    save_figure(fig, path)


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
    save_figure(fig, path)


def collect(sweep_dir: str | Path) -> str:
    """Write results.csv (every task, with a ``done`` flag), the summary table and plots.

    Returns:
        The summary as a markdown table, preceded by the done count.
    """
    sweep = SweepFolder(sweep_dir)
    meta = sweep.meta()
    table = merged_table(sweep)
    write_text_atomic(sweep.file("results.csv"), table.to_csv(index=False))
    summary_spec = meta["summary"]
    rows, columns, name = summary_spec["rows"], summary_spec["columns"], summary_spec["metric"]
    text = f"{int(table['done'].sum())} of {len(table)} tasks done"
    if rows:
        summary = _summary(table, rows, columns, name)
        write_text_atomic(sweep.file("summary.csv"), summary.to_csv(index=False))
        markdown = _markdown(summary, rows, columns, name)
        write_text_atomic(sweep.file("summary.md"), markdown + "\n")
        text += f"\n\nmean {name} by {rows}" + (f" x {columns}" if columns else "")
        text += "\n\n" + markdown
        if columns and not summary.empty:
            _heatmap(summary, rows, columns, name, sweep.file("summary.png"))
    if table["done"].any():
        _loss_curves(sweep, table, rows, sweep.file("losses.png"))
    return text


def best(
    sweep_dir: str | Path, name: str, lowest: bool | None = None, by: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Pick the best finished task by metric ``name``, overall or per value of the ``by`` axes.

    Writes ``best.json``: per group the axes, the winning task, its metric value and
    the path of its run's model (what a scan hands on, never the last run trained).

    Args:
        sweep_dir: The sweep folder.
        name: A metric of :data:`~fedhex_hpc.evaluate.catalog.METRICS`.
        lowest: ``True`` for the smallest value, ``False`` for the largest; default the
            metric's own direction.
        by: Axes to group by.

    Raises:
        ConfigError: an unknown metric or axis, a metric with no direction and no
            ``lowest``, or no finished task with the metric.
    """
    sweep = SweepFolder(sweep_dir)
    chosen = metric(name)
    if lowest is None:
        if chosen.better is None:
            raise ConfigError(f"metric {name} does not rank runs: say --min or --max")
        lowest = chosen.better == "min"
    table = merged_table(sweep)
    axes = [c for c in sweep.plan()[0].axes] if len(table) else []
    unknown = [a for a in by if a not in axes]
    if unknown:
        raise ConfigError(f"{sweep.path}: {unknown[0]!r} is not an axis; axes: {', '.join(axes)}")
    done = table[table["done"]] if len(table) else table
    if done.empty or name not in done or done[name].isna().all():
        raise ConfigError(f"{sweep.path}: no finished task has {name}; run or collect first")
    done = done[done[name].notna()]
    groups = done.groupby(list(by)) if by else [((), done)]
    picks = []
    for _, group in groups:
        winner = group.loc[group[name].idxmin() if lowest else group[name].idxmax()]
        picks.append(
            {
                **{axis: _plain(winner[axis]) for axis in by},
                "task_id": int(winner["task_id"]),
                name: float(winner[name]),
                "run_dir": str(sweep.path / winner["run_dir"]),
                "model": str(sweep.path / winner["run_dir"] / "model"),
            }
        )
    write_json_atomic(
        sweep.file("best.json"),
        {"metric": name, "lowest": lowest, "by": list(by), "best": picks},
    )
    return picks


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value
