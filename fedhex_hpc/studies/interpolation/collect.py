"""Merge the folds: the per-point table (CSV and markdown), the summary and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedhex_hpc.io_utils import write_text_atomic
from fedhex_hpc.studies.interpolation.folder import InterpolationFolder
from fedhex_hpc.studies.interpolation.study import METHODS

__all__ = ["BASELINES", "collect", "point_table", "summarize"]

BASELINES = ("nearest", "morph")
_PER_FEATURE = ("chi2_ndf", "ks_p", "dmean", "dmean_err", "dsigma", "dsigma_err")
_PER_FEATURE += ("dq10", "dq10_err", "dq50", "dq50_err", "dq90", "dq90_err")
_JOINT = ("verdict", "goal_mean", "goal_mean_err", "goal_sigma", "goal_sigma_err", "auc")
_JOINT += ("auc_p", "kl", "kl_err", "chi2_2d_ndf", "chi2_2d_p")


def _rows(point: dict[str, Any], labels: list[str]) -> list[dict[str, Any]]:
    base = {
        "fold": point["fold"],
        "point": point["label"],
        **dict(zip(labels, point["point"], strict=True)),
        "role": point["role"],
        "extrapolation": point["extrapolation"],
        "n_truth": point["n_truth"],
    }
    rows = []
    for method in METHODS:
        judged = point["methods"][method]
        row = {**base, "method": method, **{k: judged[k] for k in _JOINT}}
        for feature in judged["features"]:
            row.update({f"{k}_{feature['name']}": feature[k] for k in _PER_FEATURE})
        rows.append(row)
    return rows


def point_table(folder: InterpolationFolder) -> pd.DataFrame:
    """One record per fold x judged point x method (flow, nearest, morph)."""
    labels = folder.meta()["labels"]
    rows = []
    for fold in range(len(folder.folds())):
        result = folder.result(fold)
        for point in (result or {}).get("points", []):
            rows += _rows(point, labels)
    return pd.DataFrame.from_records(rows)


def _pm(value: float, error: float) -> str:
    return f"{value:.4f} ± {error:.4f}"


def _points_markdown(table: pd.DataFrame) -> str:
    lines = [
        "| point | role | extrapolation | flow \\|Δmean\\|/σ | flow \\|Δσ\\|/σ | flow verdict "
        "| flow AUC (p) | nearest \\|Δmean\\|/σ | morph \\|Δmean\\|/σ | morph verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (_, _, _), group in table.groupby(["role", "fold", "point"], sort=False):
        by = {r["method"]: r for _, r in group.iterrows()}
        flow, near, morph = by["flow"], by["nearest"], by["morph"]
        lines.append(
            f"| {flow['point']} | {flow['role']} | {'yes' if flow['extrapolation'] else 'no'} "
            f"| {_pm(flow['goal_mean'], flow['goal_mean_err'])} "
            f"| {_pm(flow['goal_sigma'], flow['goal_sigma_err'])} | {flow['verdict']} "
            f"| {flow['auc']:.3f} ({flow['auc_p']:.2f}) "
            f"| {_pm(near['goal_mean'], near['goal_mean_err'])} "
            f"| {_pm(morph['goal_mean'], morph['goal_mean_err'])} | {morph['verdict']} |"
        )
    return "\n".join(lines)


def summarize(table: pd.DataFrame) -> dict[str, Any]:
    """Per method over the held-out points: goal fractions, medians, flow vs baselines.

    Returns:
        ``{"points": n, "extrapolated": k, "methods": {method: {...}}, "versus":
        {baseline: {"better": k, "worse": [points]}}}``; a method's entry has
        ``met``/``not_met``/``not_resolvable`` counts and the medians (with the
        median error) of ``|dmean|/sigma`` and ``|dsigma|/sigma``.
    """
    held = table[table["role"] == "heldout"]
    by = {m: held[held["method"] == m].reset_index(drop=True) for m in METHODS}
    summary: dict[str, Any] = {
        "points": len(by["flow"]),
        "extrapolated": int(by["flow"]["extrapolation"].sum()) if len(by["flow"]) else 0,
        "methods": {},
        "versus": {},
    }
    for method, rows in by.items():
        summary["methods"][method] = {
            "met": int((rows["verdict"] == "met").sum()),
            "not_met": int((rows["verdict"] == "not met").sum()),
            "not_resolvable": int((rows["verdict"] == "not resolvable").sum()),
            **{
                f"median_{q}{s}": float(np.median(rows[f"goal_{q}{s}"])) if len(rows) else np.nan
                for q in ("mean", "sigma")
                for s in ("", "_err")
            },
        }
    flow_worst = np.maximum(by["flow"]["goal_mean"], by["flow"]["goal_sigma"])
    for baseline in BASELINES:
        other = np.maximum(by[baseline]["goal_mean"], by[baseline]["goal_sigma"])
        better = flow_worst < other
        summary["versus"][baseline] = {
            "better": int(better.sum()),
            "worse": by["flow"]["point"][~better].tolist(),
        }
    return summary


def _summary_markdown(summary: dict[str, Any], goal: float) -> str:
    n = summary["points"]
    lines = [
        f"{n} held-out points ({summary['extrapolated']} outside the training points' convex "
        f"hull); goal |Δmean|/σ and |Δσ|/σ ≤ {goal:g}",
        "",
        "| method | meets goal | not met | not resolvable | median \\|Δmean\\|/σ "
        "| median \\|Δσ\\|/σ |",
        "|---|---|---|---|---|---|",
    ]
    for method, s in summary["methods"].items():
        lines.append(
            f"| {method} | {s['met']}/{n} | {s['not_met']} | {s['not_resolvable']} "
            f"| {_pm(s['median_mean'], s['median_mean_err'])} "
            f"| {_pm(s['median_sigma'], s['median_sigma_err'])} |"
        )
    lines.append("")
    for baseline, versus in summary["versus"].items():
        worse = ", ".join(versus["worse"]) or "none"
        lines.append(
            f"flow vs {baseline}: flow closer (max of |Δmean|/σ, |Δσ|/σ) at "
            f"{versus['better']}/{n} held-out points; not at: {worse}"
        )
    return "\n".join(lines)


def collect(study_dir: str | Path) -> str:
    """Write ``points.csv``, ``points.md``, ``summary.md`` and the plots.

    Returns:
        The done count and the summary (markdown).
    """
    from fedhex_hpc.studies.interpolation.plots import draw_all

    folder = InterpolationFolder(study_dir)
    meta = folder.meta()
    n_folds = len(folder.folds())
    done = sum(folder.result(f) is not None for f in range(n_folds))
    text = f"{done} of {n_folds} folds done"
    table = point_table(folder)
    if table.empty:
        return text + " (nothing to collect yet)"
    write_text_atomic(folder.file("points.csv"), table.to_csv(index=False))
    write_text_atomic(folder.file("points.md"), _points_markdown(table) + "\n")
    summary = _summary_markdown(summarize(table), folder.spec().judge.goal)
    write_text_atomic(folder.file("summary.md"), summary + "\n")
    plots = draw_all(folder, meta, table)
    return (
        f"{text}\n\n{summary}\n\nper-point table: {folder.file('points.md')} "
        f"(and points.csv); {len(plots)} plots in {folder.file('plots')}"
    )
