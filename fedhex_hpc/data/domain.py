"""Events outside a flow's domain (beyond the logit range of its preprocessing).

Their model density is zero, so a mean log-likelihood over them is -inf. Validation
losses and test metrics leave them out (as CATHODE does) and report how many.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhex_hpc.data.arrays import Arrays
from fedhex_hpc.flows.maf import FlowModel

__all__ = ["DomainSplit", "describe_outside", "split_by_domain"]


@dataclass(frozen=True)
class DomainSplit:
    """The events of a split inside a flow's domain, and counts of those left out.

    Attributes:
        mask: Which events of the split are inside the domain, shape (n,).
        inside: The events inside the domain (all of them when none is outside).
        n_outside: Events outside the domain.
        outside_counts: Per feature, events below and above the domain, shape (d, 2);
            an event outside in several features counts in each.
    """

    mask: np.ndarray
    inside: Arrays
    n_outside: int
    outside_counts: np.ndarray


def split_by_domain(model: FlowModel, data: Arrays) -> DomainSplit:
    """Separate the events of ``data`` that lie outside ``model``'s domain."""
    mask = model.in_domain(data.x).numpy()
    counts = model.spec.preprocessing.outside_counts(data.x)
    inside = data if mask.all() else data.take(mask)
    return DomainSplit(mask, inside, int(np.sum(~mask)), counts)


def describe_outside(
    model: FlowModel, n_outside: int, n_total: int, counts: np.ndarray, what: str
) -> str:
    """How many ``what`` events lie outside the domain, feature by feature (one line).

    For example ``7 of 512 validation events outside the flow's domain, the training range
    widened by flow.logit_alpha (mj1 outside [0.05, 1.2]: 2 below, 5 above)``.

    Args:
        model: The flow whose domain is meant.
        n_outside: Events outside it.
        n_total: Events looked at.
        counts: Per-feature counts below/above, as in :class:`DomainSplit`.
        what: Which events, e.g. ``validation``.
    """
    features = model.spec.preprocessing.describe_outside(counts, model.spec.feature_names)
    return (
        f"{n_outside} of {n_total} {what} events outside the flow's domain, the training "
        f"range widened by flow.logit_alpha ({features})"
    )
