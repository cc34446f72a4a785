"""What ``fedhex infer fit`` and ``fedhex infer scan`` do: load, check, fit, write.

Every check (spec, runs, data columns, limits) happens before the first fit, so
bad input costs one line and no minimisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedhex_hpc.infer.fit import fit
from fedhex_hpc.infer.model import LikelihoodModel, build_model, load_model_spec
from fedhex_hpc.infer.nll import NLL, load_events
from fedhex_hpc.infer.scan import scan_1d, scan_2d, write_scan
from fedhex_hpc.io_utils import write_json_atomic

__all__ = ["fit_file", "load_problem", "scan_file"]


def load_problem(
    spec: str | Path,
    data: str | Path,
    weight: str = "",
    key: str = "",
    allow_extrapolation: bool = False,
) -> tuple[LikelihoodModel, NLL]:
    """The model of ``spec`` bound to the events of ``data``.

    Raises:
        ConfigError, DataError, RunDirError: bad spec, unfinished run, data
            without the flow's feature columns, empty data, limits or starts
            outside the trained range without ``allow_extrapolation``.
    """
    model_spec, base = load_model_spec(spec)
    model = build_model(model_spec, base, allow_extrapolation)
    x, w = load_events(data, model, weight, key)
    return model, NLL(model, x, w)


def fit_file(
    spec: str | Path,
    data: str | Path,
    output: str | Path,
    weight: str = "",
    key: str = "",
    allow_extrapolation: bool = False,
    max_calls: int = 0,
) -> dict[str, Any]:
    """Fit ``spec`` to ``data`` and write the result JSON to ``output``; the result.

    ``max_calls`` limits MIGRAD (0: Minuit's default).
    """
    model, nll = load_problem(spec, data, weight, key, allow_extrapolation)
    result = {"spec": str(spec), "data": str(data), **fit(nll, model, max_calls=max_calls)}
    write_json_atomic(Path(output), result)
    return result


def scan_file(
    spec: str | Path,
    data: str | Path,
    output: str | Path,
    param: str,
    param2: str = "",
    points: int = 0,
    width: float = 0.0,
    weight: str = "",
    key: str = "",
    allow_extrapolation: bool = False,
) -> dict[str, Any]:
    """Fit, then profile ``param`` (and ``param2``): ``output`` CSV, plot and JSON summary.

    Defaults: 41 points over ±4 HESSE errors in 1D, 21 x 21 over ±3 in 2D.

    Returns:
        The fit result with ``scan`` (1D: intervals and MINOS) and ``files``.
    """
    model, nll = load_problem(spec, data, weight, key, allow_extrapolation)
    for name in (param, param2):
        if name:
            model.index(name)
    result = fit(nll, model, minos=[param] if not param2 else [])
    output = Path(output)
    if not result["valid"]:
        return {**result, "scan": None, "files": []}
    if param2:
        table = scan_2d(nll, model, result, (param, param2), points or 21, width or 3.0)
        summary: dict[str, Any] = {
            "parameters": [param, param2],
            "convention": result["convention"],
        }
        names = [param, param2]
    else:
        table, summary = scan_1d(nll, model, result, param, points or 41, width or 4.0)
        summary["minos"] = result["parameters"][param]["minos"]
        names = [param]
    files = write_scan(table, output, names)
    summary_file = output.with_suffix(".json")
    write_json_atomic(summary_file, {"fit": result, "scan": summary})
    return {**result, "scan": summary, "files": [*map(str, files), str(summary_file)]}
