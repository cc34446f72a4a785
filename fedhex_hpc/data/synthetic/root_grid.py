"""Synthetic FEDHEX mass-grid ROOT files: one NanoAOD-like file per (m_Phi, m_omega) point.

Each file holds the tree ``Events`` with the branches the FEDHEX selection reads:

* ``CBL_RecoPhi_mass`` (GeV): the reconstructed Phi mass, one number per event
  (-1 when the event has no photon or no two-prong candidate);
* ``TwoProng_massPi0`` (GeV, jagged, counter ``nTwoProng``) with
  ``CBL_RecoPhi_twoprongindex``: the omega candidates and the one chosen (-1: none);
* ``Photon_pt`` (GeV, jagged, counter ``nPhoton``) with ``CBL_RecoPhi_photonindex``;
* ``CBL_Region`` (1 = signal region, 2 = sideband);
* ``GenPhi_mass``, ``GenOmega_mass`` (GeV, jagged, one entry): the generated masses.

Resolutions grow with mass: ``sigma_Phi / m_Phi = 0.02 + 0.01 m_Phi / TeV`` and
``sigma_omega / m_omega = 0.04 + 0.01 m_omega / GeV``. The selection
:data:`FEDHEX_CUT` keeps about half of the events. Points listed in ``sparse``
get only ``n_sparse`` events, so that a minimum-events threshold drops them.
Generated, not measured: never results.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from fedhex_hpc.io_utils import atomic_path
from fedhex_hpc.seeding import rng

__all__ = [
    "FEDHEX_CONDITIONS",
    "FEDHEX_CUT",
    "FEDHEX_FEATURES",
    "OMEGA_MASSES",
    "PHI_MASSES",
    "point_file_name",
    "write_root_grid",
]

#: The generated grid (GeV).
PHI_MASSES = (1000.0, 1500.0, 2000.0, 2500.0, 3000.0)
OMEGA_MASSES = (0.5, 1.0, 1.5, 2.0, 2.5)
#: What ``fedhex data convert root`` reads from these files (FEDHEX's selection).
FEDHEX_FEATURES = {
    "phi": "CBL_RecoPhi_mass",
    "omega": "TwoProng_massPi0[CBL_RecoPhi_twoprongindex]",
}
FEDHEX_CONDITIONS = {"m_phi": "GenPhi_mass[0]", "m_omega": "GenOmega_mass[0]"}
FEDHEX_CUT = (
    "(CBL_Region == 1) & (CBL_RecoPhi_twoprongindex >= 0) & "
    "(Photon_pt[CBL_RecoPhi_photonindex] > 220)"
)


def point_file_name(m_phi: float, m_omega: float) -> str:
    """``Phi2000_omega1.5.root``: the file of one mass point."""
    return f"Phi{m_phi:g}_omega{m_omega:g}.root"


def _jagged(counts: np.ndarray, values: np.ndarray) -> ak.Array:
    return ak.unflatten(values.astype(np.float32), counts)


def _events(m_phi: float, m_omega: float, n: int, gen: np.random.Generator) -> dict:
    """The branches of ``n`` events at one mass point."""
    n_prong = gen.choice(4, size=n, p=[0.1, 0.5, 0.3, 0.1])
    n_photon = gen.choice(4, size=n, p=[0.05, 0.7, 0.2, 0.05])
    has = (n_prong > 0) & (n_photon > 0)
    sigma_omega = m_omega * (0.04 + 0.01 * m_omega)
    prong = gen.uniform(0.2, 4.0, size=int(n_prong.sum()))
    prong_index = np.where(n_prong > 0, (gen.random(n) * np.maximum(n_prong, 1)).astype(int), -1)
    starts = np.concatenate([[0], np.cumsum(n_prong)[:-1]])
    chosen = starts[n_prong > 0] + prong_index[n_prong > 0]
    prong[chosen] = gen.normal(m_omega, sigma_omega, size=len(chosen))
    photon = gen.exponential(60.0, size=int(n_photon.sum()))
    photon_index = np.where(n_photon > 0, 0, -1)
    lead = np.concatenate([[0], np.cumsum(n_photon)[:-1]])[n_photon > 0]
    photon[lead] = np.abs(gen.normal(0.45 * m_phi, 0.12 * m_phi, size=len(lead)))
    sigma_phi = m_phi * (0.02 + 0.01 * m_phi / 1000.0)
    reco_phi = np.where(has, gen.normal(m_phi, sigma_phi, size=n), -1.0)
    region = np.where(gen.random(n) < 0.8, 1, 2).astype(np.int32)
    ones = np.ones(n, dtype=np.int64)
    return {
        "CBL_RecoPhi_mass": reco_phi.astype(np.float32),
        "CBL_RecoPhi_twoprongindex": prong_index.astype(np.int32),
        "CBL_RecoPhi_photonindex": photon_index.astype(np.int32),
        "CBL_Region": region,
        "TwoProng": ak.zip({"massPi0": _jagged(n_prong, prong)}),
        "Photon": ak.zip({"pt": _jagged(n_photon, photon)}),
        "GenPhi": ak.zip({"mass": _jagged(ones, np.full(n, m_phi))}),
        "GenOmega": ak.zip({"mass": _jagged(ones, np.full(n, m_omega))}),
    }


def write_root_grid(
    folder: str | Path,
    n_events: int = 4000,
    phi_masses: Sequence[float] = PHI_MASSES,
    omega_masses: Sequence[float] = OMEGA_MASSES,
    sparse: Sequence[Sequence[float]] = ((3000.0, 0.5), (1000.0, 2.5)),
    n_sparse: int = 40,
    seed: int = 0,
) -> list[Path]:
    """Write one ROOT file per (m_Phi, m_omega) point into ``folder`` (each atomically).

    Args:
        folder: Where the files go (created).
        n_events: Events per point.
        phi_masses, omega_masses: The grid (GeV).
        sparse: Points that get only ``n_sparse`` events.
        n_sparse: Events of the sparse points.
        seed: Seed; each point draws from its own stream.

    Returns:
        The files written, in grid order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    few = {(float(a), float(b)) for a, b in sparse}
    written = []
    for i, m_phi in enumerate(phi_masses):
        for j, m_omega in enumerate(omega_masses):
            n = n_sparse if (float(m_phi), float(m_omega)) in few else n_events
            branches = _events(m_phi, m_omega, n, rng(seed, "root_grid", i, j))
            path = folder / point_file_name(m_phi, m_omega)
            with atomic_path(path) as tmp, uproot.recreate(tmp) as fh:
                tree = fh.mktree(
                    "Events",
                    {name: ak.Array(value).type for name, value in branches.items()},
                    field_name=lambda outer, inner: f"{outer}_{inner}",
                )
                tree.extend(branches)
            written.append(path)
    return written
