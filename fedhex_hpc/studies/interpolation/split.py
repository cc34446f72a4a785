"""Which label points train and which are held out, as folds (one task each).

``list`` and ``every`` make one fold; ``leave_one_out`` makes one fold per left-out
point (every point, or those of ``split.points``). Each fold also judges a few of
its training points as a control.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhex_hpc.errors import ConfigError, DataError
from fedhex_hpc.studies.interpolation.labelled import LabelledData, format_point
from fedhex_hpc.studies.interpolation.spec import SplitSpec

__all__ = ["Fold", "make_folds"]

_MATCH = 1e-6


@dataclass(frozen=True)
class Fold:
    """One flow: the indices of its held-out, training and control points."""

    heldout: list[int]
    training: list[int]
    controls: list[int]

    def to_dict(self) -> dict[str, list[int]]:
        """The fold as JSON-ready lists."""
        return {"heldout": self.heldout, "training": self.training, "controls": self.controls}


def _index(data: LabelledData, point: list[float], where: str) -> int:
    """Index of ``point`` among the data's points (a one-line error if it is not one)."""
    if len(point) != len(data.labels):
        raise ConfigError(
            f"{where}: {point} has {len(point)} values; label points have {len(data.labels)} "
            f"({', '.join(data.labels)})"
        )
    given = np.asarray(point, dtype=np.float64)
    close = lambda p: np.allclose(p, given, rtol=_MATCH, atol=_MATCH)  # noqa: E731
    for stored, count in data.dropped_points:
        if close(np.asarray(stored)):
            raise DataError(
                f"{where}: held-out point {format_point(data.labels, given)} has {count} "
                "events, fewer than data.min_events"
            )
    hits = [i for i, p in enumerate(data.points) if close(p)]
    if not hits:
        shown = ", ".join(format_point(data.labels, p) for p in data.points[:8])
        more = f" ... ({len(data.points)})" if len(data.points) > 8 else ""
        raise DataError(
            f"{where}: held-out point {format_point(data.labels, given)} is not a label point "
            f"of the data; points: {shown}{more}"
        )
    return hits[0]


def _fold(heldout: list[int], n_points: int, controls: int) -> Fold:
    training = [i for i in range(n_points) if i not in set(heldout)]
    if len(training) < 2:
        raise ConfigError(
            f"split: {len(heldout)} of {n_points} label points held out leaves "
            f"{len(training)} to train on; an interpolation needs at least 2"
        )
    picks = np.unique(np.linspace(0, len(training) - 1, controls).round().astype(int))
    return Fold(sorted(heldout), training, [training[i] for i in picks] if controls else [])


def make_folds(split: SplitSpec, data: LabelledData) -> list[Fold]:
    """The folds of a split spec over the data's label points.

    Raises:
        DataError: A named point is not a label point of the data, or was dropped
            for too few events.
        ConfigError: A fold holds out (nearly) every point.
    """
    n = len(data.points)
    named = [_index(data, p, f"split.points[{i}]") for i, p in enumerate(split.points)]
    if split.mode == "leave_one_out":
        return [_fold([i], n, split.controls) for i in (named or range(n))]
    heldout = named if split.mode == "list" else list(range(split.offset, n, split.every))
    return [_fold(sorted(set(heldout)), n, split.controls)]
