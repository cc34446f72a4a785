"""Pseudo-experiments: seeded toy data sets and the per-toy fit record coverage is built from.

A toy at a truth point draws ``N ~ Poisson(events)`` events (or exactly
``events`` when ``poisson`` is off) from a generator: an exact target, a flow,
or held-out simulation rows at that truth. Each toy's seed is the named stream
``toys`` of the study seed, the truth point and the toy index, so any toy can be
redrawn alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedhex_hpc.errors import DataError
from fedhex_hpc.infer.density import Density
from fedhex_hpc.infer.fit import fit, profile_value
from fedhex_hpc.infer.model import LikelihoodModel
from fedhex_hpc.infer.nll import NLL
from fedhex_hpc.seeding import derive_seed, rng

__all__ = ["HeldOut", "draw_toy", "toy_record"]


class HeldOut:
    """Held-out simulation: rows of a file at each truth, drawn without replacement.

    Toy ``t`` of a truth point takes the next disjoint rows of one seeded
    permutation of that point's rows, so no event enters two toys.
    """

    def __init__(self, x: np.ndarray, truth: np.ndarray, seed: int) -> None:
        """Events ``x`` (n, d) with their truth value (n,)."""
        self.x, self.truth, self.seed = x, truth, seed
        self._cursor: dict[float, tuple[np.ndarray, int]] = {}

    def take(self, value: float, n: int, point: int) -> np.ndarray:
        """The next ``n`` unused events at truth ``value``.

        Raises:
            DataError: fewer unused events are left.
        """
        if value not in self._cursor:
            rows = np.flatnonzero(np.isclose(self.truth, value))
            self._cursor[value] = (rng(self.seed, "toys", point).permutation(rows), 0)
        rows, used = self._cursor[value]
        if used + n > len(rows):
            raise DataError(
                f"held-out events at truth {value:g}: {len(rows)} rows, toys need more "
                f"than {used + n}"
            )
        self._cursor[value] = (rows, used + n)
        return self.x[rows[used : used + n]]


def draw_toy(
    generator: Density | HeldOut,
    cond: np.ndarray,
    events: float,
    poisson: bool,
    seed: int,
    point: int,
    toy: int,
) -> np.ndarray:
    """Events of toy ``toy`` at truth point ``point`` (condition row ``cond``)."""
    stream = rng(seed, "toys", point, toy)
    n = int(stream.poisson(events)) if poisson else round(events)
    if isinstance(generator, HeldOut):
        return generator.take(float(cond[0]), n, point)
    return generator.sample(n, cond, derive_seed(seed, "toys", point, toy))


def toy_record(
    model: LikelihoodModel, x: np.ndarray, parameter: str, truth: float
) -> dict[str, Any]:
    """Fit one toy: value, HESSE error, 1σ and 2σ MINOS intervals of ``parameter``, Δ at the truth.

    ``delta_truth`` is the profiled ``−2 ln L`` at the truth minus the minimum: the
    truth lies inside the scan's 1σ (2σ) interval exactly when it is below 1 (4),
    for a profile with one minimum.
    """
    nll = NLL(model, x)
    result = fit(nll, model, minos=[parameter], minos_sigmas=(1.0, 2.0))
    info = result["parameters"][parameter]
    best = np.array([p["value"] for p in result["parameters"].values()])
    at_truth, truth_valid, _ = profile_value(nll, model, {parameter: truth}, best)
    minos, minos2 = info["minos"] or {}, info.get("minos_2sigma") or {}
    return {
        "events": len(x),
        "valid": result["valid"],
        "edm": result["edm"],
        "value": info["value"],
        "error": info["error"],
        "minos_lower": minos.get("lower"),
        "minos_upper": minos.get("upper"),
        "minos_valid": bool(minos.get("valid", False)),
        "minos2_lower": minos2.get("lower"),
        "minos2_upper": minos2.get("upper"),
        "minos2_valid": bool(minos2.get("valid", False)),
        "delta_truth": at_truth - result["minus_two_log_likelihood"],
        "truth_fit_valid": truth_valid,
    }
