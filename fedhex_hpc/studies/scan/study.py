"""Planning, running and collecting a scan study (imports TensorFlow through the model)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.infer.commands import load_problem
from fedhex_hpc.infer.fit import fit, profile_value
from fedhex_hpc.infer.model import LikelihoodModel
from fedhex_hpc.infer.nll import NLL
from fedhex_hpc.infer.scan import grid_points, profile_table, summary_1d, write_scan
from fedhex_hpc.io_utils import write_json_atomic
from fedhex_hpc.studies.base import run_task
from fedhex_hpc.studies.scan.folder import ScanFolder, ScanProblem

__all__ = ["collect", "plan_scan", "run_point"]


def _load(problem: ScanProblem) -> tuple[LikelihoodModel, NLL]:
    return load_problem(
        problem.spec, problem.data, problem.weight, problem.key, problem.allow_extrapolation
    )


def plan_scan(
    problem: ScanProblem,
    output: str | Path,
    names: list[str],
    points: int = 0,
    width: float = 0.0,
) -> dict[str, Any]:
    """Fit ``problem`` and write a scan study of ``names`` to ``output``.

    Defaults as for ``fedhex infer scan``: 41 points over ±4 HESSE errors in 1D,
    21 x 21 over ±3 in 2D. A fit that does not converge writes no study.

    Returns:
        The fit result, with ``tasks`` (the number of grid points; 0 when the fit
        did not converge).

    Raises:
        ConfigError: ``output`` holds a study already, or an unknown or unscannable
            parameter; the errors of :func:`~fedhex_hpc.infer.commands.load_problem`.
    """
    folder = ScanFolder(output)
    if folder.has_marker():
        raise ConfigError(f"{folder.path} holds a study already; choose another --plan folder")
    problem = problem.absolute()
    model, nll = _load(problem)
    for name in names:
        model.index(name)
    result = fit(nll, model, minos=names if len(names) == 1 else [])
    if not result["valid"]:
        return {**result, "tasks": 0}
    one = len(names) == 1
    grid = grid_points(
        result, model, names, points or (41 if one else 21), width or (4 if one else 3)
    )
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_marker(
        {
            "name": "-".join([Path(problem.spec).stem, *names]),
            "problem": dataclasses.asdict(problem),
            "parameters": names,
            "fit": result,
            "points": grid.tolist(),
        }
    )
    return {**result, "tasks": len(grid)}


def run_point(path: str | Path, task_id: int, force: bool = False) -> dict[str, Any]:
    """Profile −2 ln L at grid point ``task_id``; its result (also written to results/)."""
    folder = ScanFolder(path)
    point = folder.point(task_id)
    names = folder.parameters()

    def work() -> dict[str, Any]:
        model, nll = _load(folder.problem())
        best = np.array([p["value"] for p in folder.fit()["parameters"].values()])
        value, valid, _ = profile_value(nll, model, dict(zip(names, point, strict=True)), best)
        return {
            "point": dict(zip(names, point, strict=True)),
            "minus_two_log_likelihood": value,
            "valid": valid,
        }

    return run_task(folder, task_id, work, force)


def collect(path: str | Path) -> str:
    """Write ``scan.csv``, its plot and ``scan.json`` (fit, intervals, MINOS); a summary.

    Raises:
        ConfigError: some grid points have no result yet (named).
    """
    folder = ScanFolder(path)
    names, result, points = folder.parameters(), folder.fit(), folder.points()
    records = [folder.result(i) for i in range(len(points))]
    missing = [i for i, record in enumerate(records) if record is None]
    if missing:
        ids = ",".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise ConfigError(
            f"{folder.path}: {len(missing)} of {len(points)} scan points have no result "
            f"(tasks {ids}); run them with fedhex submit or fedhex retry"
        )
    table = profile_table(
        result,
        names,
        np.array(points),
        np.array([r["minus_two_log_likelihood"] for r in records]),
        np.array([r["valid"] for r in records]),
    )
    files = write_scan(table, folder.file("scan.csv"), names)
    summary: dict[str, Any] = {"parameters": names, "convention": result["convention"]}
    lines = [f"scan of {', '.join(names)} in {folder.path}: {len(points)} points"]
    if len(names) == 1:
        summary = summary_1d(table, result, names[0])
        summary["minos"] = result["parameters"][names[0]]["minos"]
        for label, interval in summary["intervals"].items():
            lines.append(
                f"  {names[0]} {label}: [{interval['lower']:.6g}, {interval['upper']:.6g}]"
            )
        minos = summary["minos"]
        if minos and minos["valid"]:
            best = summary["best"]
            lines.append(
                f"  {names[0]} MINOS 1sigma: [{best + minos['lower']:.6g}, "
                f"{best + minos['upper']:.6g}]"
            )
    invalid = int((~table["valid"]).sum())
    if invalid:
        lines.append(f"  {invalid} points did not converge (valid = False in scan.csv)")
    summary_file = folder.file("scan.json")
    write_json_atomic(summary_file, {"fit": result, "scan": summary})
    lines.append("written: " + ", ".join(map(str, [*files, summary_file])))
    return "\n".join(lines)
