"""Merging a toys study: bias, pulls and coverage with Clopper–Pearson bands, tables, plots.

Per fit and truth point (valid fits only):

* bias ``mean(value − truth)`` with its standard error, and in units of the mean
  HESSE error;
* pulls ``(value − truth) / sigma`` with the MINOS error on the side of the truth
  (HESSE where MINOS failed): mean and width with their errors;
* coverage of the 68.27% and 95.45% intervals, from MINOS (1σ and 2σ) and from
  the profile likelihood (``Δ(−2 ln L)`` at the truth below 1 and 4, which is the
  scan interval's coverage for a profile with one minimum), each with its 95%
  Clopper–Pearson interval; ``ok`` when the nominal value lies inside it;
* against the reference fit (same toys): mean and RMS of
  ``(value − value_ref) / error_ref``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta, chi2

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.io_utils import atomic_path, write_text_atomic
from fedhex_hpc.studies.report import save_figure
from fedhex_hpc.studies.toys.folder import ToysFolder

__all__ = ["NOMINAL", "clopper_pearson", "collect", "summarise", "toy_table"]

#: Coverage levels: name -> nominal probability.
NOMINAL = {"68": 0.6827, "95": 0.9545}
#: Confidence of the Clopper–Pearson band around an observed coverage.
BAND = 0.95


def clopper_pearson(k: int, n: int, confidence: float = BAND) -> tuple[float, float]:
    """Exact binomial interval for ``k`` successes in ``n`` trials."""
    tail = (1 - confidence) / 2
    low = float(beta.ppf(tail, k, n - k + 1)) if k > 0 else 0.0
    high = float(beta.ppf(1 - tail, k + 1, n - k)) if k < n else 1.0
    return low, high


def toy_table(folder: ToysFolder) -> pd.DataFrame:
    """One row per toy and fit from every finished block."""
    rows = []
    for task_id in range(len(folder.tasks())):
        result = folder.result(task_id)
        if result is None:
            continue
        for toy in result["toys"]:
            for fit, record in toy["fits"].items():
                rows.append(
                    {
                        "fit": fit,
                        "point": result["point"],
                        "truth": result["truth"],
                        "toy": toy["toy"],
                        **record,
                    }
                )
    if not rows:
        raise ConfigError(
            f"{folder.path}: no finished blocks yet; run `fedhex submit {folder.path}`"
        )
    table = pd.DataFrame.from_records(rows)
    for column in ("minos_lower", "minos_upper", "minos2_lower", "minos2_upper"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    dev = table["value"] - table["truth"]
    side = np.where(dev > 0, -table["minos_lower"], table["minos_upper"])
    sigma = np.where(table["minos_valid"] & np.isfinite(side) & (side > 0), side, table["error"])
    table["pull"] = dev / sigma
    for level, (lo, hi, ok) in {
        "68": ("minos_lower", "minos_upper", "minos_valid"),
        "95": ("minos2_lower", "minos2_upper", "minos2_valid"),
    }.items():
        inside = (table["truth"] >= table["value"] + table[lo]) & (
            table["truth"] <= table["value"] + table[hi]
        )
        table[f"minos_covers_{level}"] = inside & table[ok]
    table["profile_covers_68"] = table["delta_truth"] < 1.0
    table["profile_covers_95"] = table["delta_truth"] < 4.0
    return table


def _coverage(covers: pd.Series, nominal: float) -> dict[str, Any]:
    k, n = int(covers.sum()), len(covers)
    low, high = clopper_pearson(k, n)
    return {
        "k": k,
        "n": n,
        "fraction": k / n,
        "low": low,
        "high": high,
        "ok": bool(low <= nominal <= high),
    }


def summarise(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """One row per fit and truth point (see the module docstring)."""
    rows = []
    for (fit, truth), group in table.groupby(["fit", "truth"], sort=True):
        valid = group[group["valid"]]
        n = len(valid)
        if n < 2:
            continue
        dev = valid["value"] - truth
        width = float(valid["pull"].std(ddof=1))
        row = {
            "fit": fit,
            "truth": truth,
            "toys": len(group),
            "valid": n,
            "bias": float(dev.mean()),
            "bias_error": float(dev.std(ddof=1) / math.sqrt(n)),
            "mean_error": float(valid["error"].mean()),
            "pull_mean": float(valid["pull"].mean()),
            "pull_mean_error": width / math.sqrt(n),
            "pull_width": width,
            "pull_width_error": width / math.sqrt(2 * (n - 1)),
        }
        row["bias_sigma"] = row["bias"] / row["mean_error"]
        for method in ("minos", "profile"):
            for level, nominal in NOMINAL.items():
                cov = _coverage(valid[f"{method}_covers_{level}"], nominal)
                for key in ("fraction", "low", "high", "ok"):
                    row[f"{method}_{level}_{key}"] = cov[key]
        if fit != reference:
            ref = table[(table["fit"] == reference) & (table["truth"] == truth)]
            both = valid.merge(ref[ref["valid"]], on="toy", suffixes=("", "_ref"))
            diff = (both["value"] - both["value_ref"]) / both["error_ref"]
            row["vs_reference_mean"] = float(diff.mean()) if len(diff) else math.nan
            row["vs_reference_rms"] = float(np.sqrt((diff**2).mean())) if len(diff) else math.nan
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def _cell(row: pd.Series, method: str, level: str) -> str:
    flag = "" if row[f"{method}_{level}_ok"] else " ✗"
    return (
        f"{row[f'{method}_{level}_fraction']:.3f} "
        f"[{row[f'{method}_{level}_low']:.3f}, {row[f'{method}_{level}_high']:.3f}]{flag}"
    )


def _markdown(summary: pd.DataFrame, parameter: str) -> str:
    has_ref = "vs_reference_mean" in summary
    head = [
        "fit",
        f"true {parameter}",
        "toys (valid)",
        "bias ± err",
        "bias / σ",
        "pull mean",
        "pull width",
        "68.27% MINOS",
        "68.27% profile",
        "95.45% MINOS",
        "95.45% profile",
    ] + (["vs ref mean / RMS (σ)"] if has_ref else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in summary.iterrows():
        cells = [
            r["fit"],
            f"{r['truth']:g}",
            f"{r['toys']} ({r['valid']})",
            f"{r['bias']:+.4f} ± {r['bias_error']:.4f}",
            f"{r['bias_sigma']:+.3f}",
            f"{r['pull_mean']:+.3f} ± {r['pull_mean_error']:.3f}",
            f"{r['pull_width']:.3f} ± {r['pull_width_error']:.3f}",
            _cell(r, "minos", "68"),
            _cell(r, "profile", "68"),
            _cell(r, "minos", "95"),
            _cell(r, "profile", "95"),
        ]
        if has_ref:
            ref = r.get("vs_reference_mean")
            cells.append("-" if pd.isna(ref) else f"{ref:+.3f} / {r['vs_reference_rms']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot_point(table: pd.DataFrame, truth: float, parameter: str, path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    ax_pull, ax_dev = fig.subplots(1, 2)
    grid = np.linspace(-4, 4, 200)
    edges = np.linspace(-4, 4, 33)
    for fit, group in table[(table["truth"] == truth) & table["valid"]].groupby("fit"):
        # per toy 1 / (toys x bin width): a density even with pulls beyond the axis
        scale = np.full(len(group), 1 / (len(group) * (edges[1] - edges[0])))
        ax_pull.hist(
            group["pull"].clip(-4, 4),
            bins=edges,
            weights=scale,
            histtype="step",
            label=f"{fit} (pulls beyond ±4 at the edges)",
        )
        ax_dev.hist(group["value"] - truth, bins=30, histtype="step", label=fit)
    ax_pull.plot(
        grid, np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi), "k--", lw=1, label="N(0, 1)"
    )
    ax_pull.set_xlabel("pull")
    ax_pull.legend(fontsize=8)
    ax_dev.set_xlabel(f"fitted − true {parameter}")
    ax_dev.legend(fontsize=8)
    fig.suptitle(f"true {parameter} = {truth:g}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def _plot_overview(table: pd.DataFrame, summary: pd.DataFrame, parameter: str, path) -> str:
    """Expected-coverage curve and bias per truth point; the χ²/ndf of the biases."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8))
    ax_cov, ax_bias = fig.subplots(1, 2)
    alphas = np.linspace(0.01, 0.99, 99)
    notes = []
    for fit, group in table[table["valid"]].groupby("fit"):
        p = chi2.cdf(np.clip(group["delta_truth"].to_numpy(), 0, None), df=1)
        observed = np.array([(p <= a).mean() for a in alphas])
        ax_cov.plot(alphas, observed, label=fit)
        rows = summary[summary["fit"] == fit]
        pulls = rows["bias"] / rows["bias_error"]
        chi2_ndf = float((pulls**2).sum() / len(rows))
        notes.append(f"{fit}: χ²/ndf = {chi2_ndf * len(rows):.2f}/{len(rows)} (bias vs 0)")
        ax_bias.errorbar(
            rows["truth"],
            rows["bias"],
            rows["bias_error"],
            fmt="o",
            capsize=3,
            label=f"{fit} (χ²/ndf {chi2_ndf * len(rows):.1f}/{len(rows)})",
        )
    n = int(table[table["valid"]].groupby("fit").size().min())
    band = np.array([clopper_pearson(round(a * n), n) for a in alphas])
    ax_cov.fill_between(
        alphas, band[:, 0], band[:, 1], color="grey", alpha=0.3, label=f"95% band, {n} toys"
    )
    ax_cov.plot([0, 1], [0, 1], "k--", lw=1)
    ax_cov.set_xlabel("nominal coverage (profile likelihood, 1 dof)")
    ax_cov.set_ylabel("observed coverage")
    ax_cov.legend(fontsize=8)
    ax_bias.axhline(0, color="k", lw=1)
    ax_bias.set_xlabel(f"true {parameter}")
    ax_bias.set_ylabel(f"fitted − true {parameter}")
    ax_bias.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return "; ".join(notes)


def collect(path) -> str:
    """Merge the blocks of the study in ``path``: toys.csv, summary.csv/.md and the plots."""
    folder = ToysFolder(path)
    spec = folder.spec()
    table = toy_table(folder)
    reference = spec.reference or next(iter(spec.fits))
    summary = summarise(table, reference)
    if summary.empty:
        raise ConfigError(f"{folder.path}: fewer than 2 valid toys per point so far")
    for name, frame in (("toys.csv", table), ("summary.csv", summary)):
        with atomic_path(folder.file(name)) as tmp:
            frame.to_csv(tmp, index=False)
    plots = folder.file("plots")
    plots.mkdir(exist_ok=True)
    for truth in sorted(table["truth"].unique()):
        _plot_point(table, truth, spec.parameter, plots / f"truth_{truth:g}")
    chi2_note = _plot_overview(table, summary, spec.parameter, plots / "overview")
    done = len({(r.point, r.toy) for r in table.itertuples()})
    text = (
        f"toys study {spec.name}: {done} of {spec.toys * len(spec.truths)} toys, fits "
        f"{', '.join(spec.fits)} (reference {reference}); −2 ln L, errordef = 1; "
        f"coverage bands: {BAND:.0%} Clopper–Pearson\n\n"
        + _markdown(summary, spec.parameter)
        + f"\n\nbias vs truth: {chi2_note}"
    )
    write_text_atomic(folder.file("summary.md"), text + "\n")
    return text + f"\n\nwritten: {folder.file('summary.md')}, toys.csv, summary.csv, plots/"
