"""Collect an anomaly-detection study: results.csv, the summary table and the figures.

* ``results.csv``: one row per finished task (method, classifier, features, noise,
  seed, n_signal, S/B, auc, max_sic, max_sic_25, sic_eff_0.2, rejection_eff_0.3,
  closure AUC and band, sculpting χ²/ndf per score cut, step times);
* ``summary.md`` / ``summary.csv``: per configuration and n_signal, the median of
  each figure over seeds with its 16–84 % band, and the closure verdict;
* ``plots/``: median SIC and rejection curves per method at the reference
  injection, the S/B scan (max SIC vs S/B with bands), closure AUCs and sculpting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.io_utils import atomic_path, write_text_atomic
from fedhex_hpc.studies.lhco_anomaly.folder import LhcoFolder
from fedhex_hpc.studies.report import save_figure

__all__ = ["collect", "results_table", "summarise"]

_CONFIG = ["method", "classifier", "features", "noise"]
_FIGURES = ["auc", "max_sic", "max_sic_25", "sic_eff_0.2", "rejection_eff_0.3", "closure_auc"]


def _row(result: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
    for fraction, chi2_ndf in result["sculpting"].items():
        row[f"sculpt_chi2ndf_{float(fraction):g}"] = chi2_ndf
    for part, count in result.get("outside_domain", {}).items():
        row[f"outside_domain_{part}"] = count
    for step, seconds in result["shared_seconds"].items():
        row[f"seconds_built_{step}"] = seconds  # when the group's step was built
    for step, seconds in result["timings"].items():
        row[f"seconds_{step}"] = seconds  # in this task (a reused step: loading it)
    return row


def results_table(folder: LhcoFolder) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One row per finished task, and the finished results themselves."""
    results = [r for i in range(len(folder.tasks())) if (r := folder.result(i))]
    if not results:
        raise ConfigError(f"{folder.path}: no task has finished yet (fedhex status {folder.path})")
    return pd.DataFrame([_row(r) for r in results]), results


def _band(values: pd.Series) -> tuple[float, float, float]:
    clean = values.replace([np.inf, -np.inf], np.nan).dropna()
    if clean.empty:
        return np.nan, np.nan, np.nan
    low, mid, high = np.percentile(clean, [16, 50, 84])
    return float(mid), float(low), float(high)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Median and 16–84 % band of each figure over seeds, per configuration and n_signal."""
    rows = []
    for keys, group in table.groupby([*_CONFIG, "n_signal"], sort=True):
        row = dict(zip([*_CONFIG, "n_signal"], keys, strict=True))
        row["runs"] = len(group)
        row["s_over_b"] = float(group["s_over_b"].median())
        for figure in _FIGURES:
            row[figure], row[f"{figure}_low"], row[f"{figure}_high"] = _band(group[figure])
        for column in (c for c in table.columns if c.startswith("sculpt_chi2ndf_")):
            row[column] = float(group[column].median())
        inside = (group["closure_low"] <= 0.5) & (group["closure_high"] >= 0.5)
        row["closure_inside"] = f"{int(inside.sum())}/{len(group)}"
        rows.append(row)
    return pd.DataFrame(rows)


def _label(row: Any) -> str:
    parts = [row.method] + ([row.classifier] if row.classifier != "none" else [])
    if row.features != "baseline":
        parts.append(row.features)
    if row.noise:
        parts.append(f"+{row.noise} noise")
    return " ".join(parts)


def _markdown(summary: pd.DataFrame) -> str:
    lines = [
        "| method | n_signal | SR S/B | runs | max SIC (FPR>1.84e-5) | max SIC (≥25 bkg) "
        "| SIC @ ε_S=0.2 | 1/FPR @ ε_S=0.3 | AUC | closure AUC | closure in band |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(row: pd.Series, figure: str, digits: int = 2) -> str:
        mid, low, high = (row[f] for f in (figure, f"{figure}_low", f"{figure}_high"))
        return f"{mid:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    for _, row in summary.iterrows():
        lines.append(
            f"| {_label(row)} | {row.n_signal} | {row.s_over_b:.4f} | {row.runs} | "
            f"{cell(row, 'max_sic')} | {cell(row, 'max_sic_25')} | {cell(row, 'sic_eff_0.2')} "
            f"| {cell(row, 'rejection_eff_0.3', 0)} | {cell(row, 'auc', 3)} "
            f"| {cell(row, 'closure_auc', 3)} | {row.closure_inside} |"
        )
    return "\n".join(lines)


def _plot_curves(results: list[dict[str, Any]], n_signal: int, path: Path) -> None:
    from matplotlib.figure import Figure

    from fedhex_hpc.evaluate.anomaly import median_curves

    fig = Figure(figsize=(10, 4))
    ax_sic, ax_rej = fig.subplots(1, 2)
    chosen = [r for r in results if r["n_signal"] == n_signal]
    frame = pd.DataFrame([{k: r[k] for k in _CONFIG} for r in chosen])
    for keys, group in frame.groupby(_CONFIG, sort=True):
        curves = [chosen[i]["curve"] for i in group.index]
        grid = np.asarray(curves[0]["tpr"])
        median = median_curves(curves, grid)
        label = _label(pd.Series(dict(zip(_CONFIG, keys, strict=True))))
        sic, rejection = median["sic"], median["rejection"]
        (line,) = ax_sic.plot(grid, sic["median"], label=f"{label} ({len(curves)} runs)")
        ax_sic.fill_between(grid, sic["low"], sic["high"], color=line.get_color(), alpha=0.2)
        ax_rej.plot(grid, rejection["median"], color=line.get_color(), label=label)
        ax_rej.fill_between(
            grid, rejection["low"], rejection["high"], color=line.get_color(), alpha=0.2
        )
    ax_sic.set_xlabel("signal efficiency ε_S")
    ax_sic.set_ylabel("SIC = ε_S / √ε_B")
    ax_sic.legend(fontsize=7)
    ax_rej.set_xlabel("signal efficiency ε_S")
    ax_rej.set_ylabel("background rejection 1/ε_B")
    ax_rej.set_yscale("log")
    fig.suptitle(f"median and 16–84% band over seeds, n_signal = {n_signal}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def _plot_scan(summary: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for keys, group in summary.groupby(_CONFIG, sort=True):
        group = group.sort_values("s_over_b")
        label = _label(pd.Series(dict(zip(_CONFIG, keys, strict=True))))
        (line,) = ax.plot(100 * group["s_over_b"], group["max_sic"], "o-", label=label)
        ax.fill_between(
            100 * group["s_over_b"],
            group["max_sic_low"],
            group["max_sic_high"],
            color=line.get_color(),
            alpha=0.2,
        )
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("signal-region S/B [%]")
    ax.set_ylabel("median max SIC (FPR > 1.84e-5)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def _plot_checks(summary: pd.DataFrame, path: Path) -> None:
    """Closure AUC (median and band over seeds) and sculpting χ²/ndf per configuration."""
    from matplotlib.figure import Figure

    rows = summary.sort_values([*_CONFIG, "n_signal"]).reset_index(drop=True)
    fig = Figure(figsize=(10, 1.5 + 0.25 * len(rows)))
    ax_closure, ax_sculpt = fig.subplots(1, 2, sharey=True)
    labels = [f"{_label(row)}, n_signal {row.n_signal}" for _, row in rows.iterrows()]
    y = np.arange(len(rows))
    ax_closure.errorbar(
        rows["closure_auc"],
        y,
        xerr=[
            rows["closure_auc"] - rows["closure_auc_low"],
            rows["closure_auc_high"] - rows["closure_auc"],
        ],
        fmt="o",
    )
    cuts = sorted(c for c in rows.columns if c.startswith("sculpt_chi2ndf_"))
    for j, column in enumerate(cuts):
        keep = float(column.removeprefix("sculpt_chi2ndf_"))
        ax_sculpt.plot(rows[column], y, "o", color=f"C{j + 1}", label=f"top {keep:.0%}")
    ax_closure.set_yticks(y, labels, fontsize=7)
    ax_closure.axvline(0.5, color="k", lw=0.8)
    ax_closure.set_xlabel("closure AUC: background model vs true SR background")
    ax_sculpt.axvline(1.0, color="k", lw=0.8)
    ax_sculpt.set_xlabel("mjj χ²/ndf of true background after the score cut")
    ax_sculpt.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def collect(path: str | Path) -> str:
    """Merge the finished tasks of the study in ``path``; the printed summary."""
    folder = LhcoFolder(path)
    spec = folder.spec()
    table, results = results_table(folder)
    summary = summarise(table)
    for name, frame in (("results.csv", table), ("summary.csv", summary)):
        with atomic_path(folder.file(name)) as tmp:
            frame.to_csv(tmp, index=False)
    plots = folder.file("plots")
    plots.mkdir(exist_ok=True)
    reference = spec.reference_n_signal
    if any(r["n_signal"] == reference for r in results):
        _plot_curves(results, reference, plots / "sic_curves")
    _plot_scan(summary, plots / "sb_scan")
    _plot_checks(summary, plots / "closure_sculpting")
    origin = folder.meta()["inputs"]["origin"]
    text = (
        f"lhco_anomaly study {spec.name}: {len(results)} of {len(folder.tasks())} tasks, on "
        f"{origin}; medians over seeds [16%, 84%]\n\n" + _markdown(summary)
    )
    write_text_atomic(folder.file("summary.md"), text + "\n")
    return text + f"\n\nwritten: {folder.file('summary.md')}, results.csv, summary.csv, plots/"
