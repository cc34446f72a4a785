"""Synthetic LHC Olympics 2020 R&D files in the public layouts, at any size.

The files mimic the real ones byte-layout-wise (see :mod:`fedhex_hpc.data.sources.lhco`)
so the readers can be tested and benchmarked without the 7 GB download:

* raw (``events_anomalydetection.h5``): pandas fixed format, integer column labels
  0..2100, one float64 block of 700 zero-padded (pT, eta, phi) particles + label;
* tables (``events_anomalydetection_{background|signal}_table_{split}.h5``): pandas
  table format, float32 columns ``pt_i, eta_i, phi_i``;
* features (``events_anomalydetection_v2.features.h5``): pandas fixed (or table)
  format, ``pxj1 ... tau3j2, label`` in GeV;
* extra (``events_anomalydetection_qcd_extra_inneronly_features.h5``): the features
  layout, background only (label 0), mjj inside the signal region 3.3-3.7 TeV.

Events are dijets: background with a falling mjj spectrum (2.5-7 TeV), QCD-like jet
masses and high tau21; signal W' -> X(500 GeV) Y(100 GeV) at mjj = 3.5 TeV with
two-prong jets (low tau21). The dijet is built in its rest frame and boosted by a
small recoil, so mjj is exact. Raw particles are jet constituents spread around the
jet axes plus soft radiation, sorted by pT and zero-padded.

Files are written in chunks: fixed-format ones by copying the layout pandas writes
for a one-row frame and filling full-size datasets with h5py, so memory stays
bounded (a 2 GB raw file needs well under 500 MB). Each file is written under a
temporary name and renamed when complete.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import pandas as pd

from fedhex_hpc.data.sources.base import CLASS_NAMES
from fedhex_hpc.data.sources.lhco import (
    EXTRA_FILE_NAME,
    FEATURE_FILE_COLUMNS,
    FEATURES_FILE_NAME,
    KEY,
    N_PARTICLES,
    PARTICLE_COLUMNS,
    RAW_FILE_NAME,
    SPLITS,
    table_file_name,
)
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.io_utils import atomic_path
from fedhex_hpc.seeding import rng as seeded_rng

__all__ = [
    "EXTRA_MJJ_TEV",
    "KINDS",
    "SIGNAL_FRACTION",
    "generate",
    "write_extra_background",
    "write_features",
    "write_raw",
    "write_tables",
]

#: What :func:`generate` can write.
KINDS = ("raw", "tables", "features", "extra")
#: mjj range of the extra signal-region background (TeV).
EXTRA_MJJ_TEV = (3.3, 3.7)

#: Signal share of the real R&D file (100k of 1.1M events).
SIGNAL_FRACTION = 100_000 / 1_100_000
_MJJ_BACKGROUND_GEV = (2500.0, 7000.0)
_MJJ_BACKGROUND_INDEX = 6.0
_MJJ_SIGNAL_GEV = 3500.0
_M_X_GEV, _M_Y_GEV = 500.0, 100.0
_JET_COLUMNS = ("px", "py", "pz", "m", "tau1", "tau2", "tau3")
_RAW_CHUNK = 1024
_FEATURES_CHUNK = 100_000

Chunk = Callable[[np.random.Generator, np.ndarray], np.ndarray]

# ----------------------------------------------------------------------------- physics


def _labels(rng: np.random.Generator, n_events: int, signal_fraction: float) -> np.ndarray:
    if not 0.0 <= signal_fraction <= 1.0:
        raise ConfigError(f"signal_fraction must be in [0, 1], got {signal_fraction}")
    labels = np.zeros(n_events, np.float64)
    labels[: round(n_events * signal_fraction)] = 1.0
    return rng.permutation(labels)


def _power_law(
    rng: np.random.Generator, n: int, bounds: tuple[float, float], index: float
) -> np.ndarray:
    """Samples of a density proportional to x**-index on ``bounds``."""
    low, high = (edge ** (1.0 - index) for edge in bounds)
    return (low + rng.uniform(size=n) * (high - low)) ** (1.0 / (1.0 - index))


def _mjj(rng: np.random.Generator, signal: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    background = _power_law(rng, signal.size, bounds, _MJJ_BACKGROUND_INDEX)
    resonance = rng.normal(_MJJ_SIGNAL_GEV, 0.04 * _MJJ_SIGNAL_GEV, signal.size)
    return np.where(signal, resonance, background)


def _truncated_lognormal(
    rng: np.random.Generator,
    median: float,
    sigma: float,
    bounds: tuple[float, float],
    shape: tuple[int, ...],
) -> np.ndarray:
    """Log-normal values inside ``bounds``, those outside drawn again: a continuous density
    with no pile-up at the bounds (clipping would put ~1% of jets at exactly the bound,
    an atom no density model can fit and every classifier finds)."""
    values = rng.lognormal(np.log(median), sigma, shape)
    outside = (values < bounds[0]) | (values > bounds[1])
    while outside.any():
        values[outside] = rng.lognormal(np.log(median), sigma, int(outside.sum()))
        outside = (values < bounds[0]) | (values > bounds[1])
    return values


def _jet_masses(rng: np.random.Generator, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # QCD masses with a tail that reaches the signal's (a supervised tree ensemble on the
    # four baseline features reaches max SIC ~ 30, AUC ~ 0.999, not a background-free box)
    qcd = _truncated_lognormal(rng, 60.0, 1.0, (5.0, 800.0), (2, signal.size))
    x = rng.normal(_M_X_GEV, 0.10 * _M_X_GEV, signal.size)
    y = rng.normal(_M_Y_GEV, 0.15 * _M_Y_GEV, signal.size)
    x_first = rng.uniform(size=signal.size) < 0.5
    first = np.where(signal, np.where(x_first, x, y), qcd[0])
    second = np.where(signal, np.where(x_first, y, x), qcd[1])
    return first, second


def _subjettiness(rng: np.random.Generator, signal: np.ndarray) -> np.ndarray:
    """tau1, tau2, tau3 of one jet per event, shape (3, n); 0.1% single-particle jets (all 0)."""
    n = signal.size
    tau1 = rng.lognormal(np.log(0.25), 0.5, n) * (rng.uniform(size=n) > 0.001)
    tau21 = np.where(signal, rng.beta(3.0, 4.0, n), rng.beta(5.0, 3.0, n))
    tau2 = tau1 * tau21
    return np.stack([tau1, tau2, tau2 * rng.beta(5.0, 3.0, n)])


def _boost(energy: np.ndarray, momentum: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Four-vectors (n, 4) of rest-frame ``(energy, momentum)`` in a frame where the rest
    frame moves with velocity ``beta`` (n, 3)."""
    gamma = 1.0 / np.sqrt(1.0 - np.sum(beta**2, axis=1))
    beta_p = np.sum(beta * momentum, axis=1)
    factor = gamma**2 / (gamma + 1.0) * beta_p + gamma * energy
    return np.column_stack([gamma * (energy + beta_p), momentum + factor[:, None] * beta])


def _two_body_momentum(mjj: np.ndarray, m_a: np.ndarray, m_b: np.ndarray) -> np.ndarray:
    """Momentum of each jet in the rest frame of a pair of mass ``mjj``."""
    return np.sqrt((mjj**2 - (m_a + m_b) ** 2) * (mjj**2 - (m_a - m_b) ** 2)) / (2.0 * mjj)


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Central jet directions, (n, 3): |cos theta*| < 0.7, phi uniform."""
    cos_theta, phi = rng.uniform(-0.7, 0.7, n), rng.uniform(-np.pi, np.pi, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.column_stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta])


def _pair_velocity(rng: np.random.Generator, mjj: np.ndarray) -> np.ndarray:
    """Lab velocity (n, 3) of the pair: recoil pT ~ 80 GeV, rapidity ~ N(0, 0.6)."""
    pt, phi = rng.exponential(80.0, mjj.size), rng.uniform(-np.pi, np.pi, mjj.size)
    rapidity = rng.normal(0.0, 0.6, mjj.size)
    transverse_mass = np.sqrt(mjj**2 + pt**2)
    momentum = [pt * np.cos(phi), pt * np.sin(phi), transverse_mass * np.sinh(rapidity)]
    return np.column_stack(momentum) / (transverse_mass * np.cosh(rapidity))[:, None]


def _dijets(
    rng: np.random.Generator,
    labels: np.ndarray,
    mjj_bounds: tuple[float, float] = _MJJ_BACKGROUND_GEV,
) -> dict[str, np.ndarray]:
    """Features-file columns (GeV) of one dijet per label, jets ordered by pT; background
    mjj within ``mjj_bounds`` (GeV)."""
    signal = labels == 1.0
    mjj, masses = _mjj(rng, signal, mjj_bounds), _jet_masses(rng, signal)
    p_star = _two_body_momentum(mjj, *masses)[:, None] * _unit_vectors(rng, labels.size)
    beta = _pair_velocity(rng, mjj)
    jets = []
    for sign, mass in zip((1.0, -1.0), masses, strict=True):
        four = _boost(np.sqrt(np.sum(p_star**2, axis=1) + mass**2), sign * p_star, beta)
        jets.append(np.vstack([four[:, 1:].T, mass, _subjettiness(rng, signal)]))
    second_leads = np.hypot(*jets[0][:2]) < np.hypot(*jets[1][:2])
    ordered = (np.where(second_leads, jets[b], jets[a]) for a, b in ((0, 1), (1, 0)))
    columns = {
        f"{q}j{jet}": values[row]
        for jet, values in enumerate(ordered, start=1)
        for row, q in enumerate(_JET_COLUMNS)
    }
    return {**columns, "label": labels}


def _jet_axes(dijets: dict[str, np.ndarray], jet: int) -> tuple[np.ndarray, ...]:
    px, py, pz, mass = (dijets[f"{q}j{jet}"][:, None] for q in ("px", "py", "pz", "m"))
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / pt), np.arctan2(py, px), np.clip(mass / pt, 0.02, 0.4)


def _particles(
    rng: np.random.Generator, dijets: dict[str, np.ndarray], particles_mean: float
) -> np.ndarray:
    """(n, 2100) raw particle columns: pT-sorted (pT, eta, phi) triplets, zero-padded."""
    n = dijets["label"].size
    shape = (n, N_PARTICLES)
    counts = np.clip(rng.poisson(particles_mean, n), 8, N_PARTICLES)
    valid = np.arange(N_PARTICLES) < counts[:, None]
    origin = np.where(valid, rng.choice(3, size=shape, p=(0.3, 0.3, 0.4)), -1)
    soft = origin == 2
    pt = soft * (0.5 + rng.exponential(1.5, shape))
    eta = soft * rng.uniform(-2.5, 2.5, shape)
    phi = soft * rng.uniform(-np.pi, np.pi, shape)
    for jet in (1, 2):
        member = origin == jet - 1
        jet_pt, jet_eta, jet_phi, spread = _jet_axes(dijets, jet)
        weight = rng.gamma(0.5, size=shape) * member
        total = weight.sum(axis=1, keepdims=True)
        pt += np.divide(weight, total, out=np.zeros(shape), where=total > 0) * jet_pt
        eta += member * (jet_eta + spread * rng.normal(size=shape))
        phi += member * (jet_phi + spread * rng.normal(size=shape))
    phi = np.where(valid, np.mod(phi + np.pi, 2.0 * np.pi) - np.pi, 0.0)
    order = np.argsort(-pt, axis=1, kind="stable")
    triplets = [np.take_along_axis(values, order, axis=1) for values in (pt, eta, phi)]
    return np.stack(triplets, axis=2).reshape(n, 3 * N_PARTICLES)


# ----------------------------------------------------------------------------- writers


def _chunks(
    labels: np.ndarray, rng: np.random.Generator, chunk_rows: int, make: Chunk
) -> Iterator[np.ndarray]:
    for start in range(0, labels.size, chunk_rows):
        yield make(rng, labels[start : start + chunk_rows])


def _copy_attrs(source: h5py.HLObject, target: h5py.HLObject) -> None:
    """Copy attributes with their exact HDF5 types.

    PyTables reads only null-terminated UTF-8 string attributes back as ``str``
    (which pandas needs); h5py's high-level API would write null-padded ASCII.
    """
    for name in source.attrs:
        attr = h5py.h5a.open(source.id, name.encode())
        file_type, space = attr.get_type(), attr.get_space()
        copy = h5py.h5a.create(target.id, name.encode(), file_type, space)
        if space.get_simple_extent_type() != h5py.h5s.NULL:
            data = np.empty(attr.shape, attr.dtype)
            attr.read(data, mtype=file_type)
            copy.write(data, mtype=file_type)


def _write_fixed(
    path: Path, columns: list, rows: int, dtype: type, chunks: Iterator[np.ndarray]
) -> None:
    """Write a pandas fixed-format frame of one block without holding it in memory.

    pandas writes the layout (attributes, ``axis0``, ``block0_items``) for a one-row
    frame; h5py copies it and writes full-size ``axis1``/``block0_values`` in chunks.
    """
    with tempfile.TemporaryDirectory() as folder:
        skeleton = Path(folder) / "skeleton.h5"
        frame = pd.DataFrame(np.zeros((1, len(columns)), dtype), columns=columns)
        frame.to_hdf(skeleton, key=KEY, format="fixed", mode="w")
        with h5py.File(skeleton, "r") as src, h5py.File(path, "w") as dst:
            _copy_attrs(src, dst)
            group = dst.create_group(KEY)
            _copy_attrs(src[KEY], group)
            for name in ("axis0", "block0_items"):
                src.copy(src[f"{KEY}/{name}"], group, name)
            index = group.create_dataset("axis1", data=np.arange(rows, dtype=np.int64))
            values = group.create_dataset("block0_values", shape=(rows, len(columns)), dtype=dtype)
            for name, dataset in (("axis1", index), ("block0_values", values)):
                _copy_attrs(src[f"{KEY}/{name}"], dataset)
            start = 0
            for block in chunks:
                values[start : start + len(block)] = block
                start += len(block)


def _write_table(path: Path, columns: list, dtype: type, chunks: Iterator[np.ndarray]) -> None:
    with pd.HDFStore(path, mode="w") as store:
        start = 0
        for block in chunks:
            index = pd.RangeIndex(start, start + len(block))
            frame = pd.DataFrame(block.astype(dtype, copy=False), columns=columns, index=index)
            store.append(KEY, frame, format="table", index=False)
            start += len(block)


def _check_count(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value}")


def write_raw(
    path: str | Path,
    n_events: int,
    signal_fraction: float = SIGNAL_FRACTION,
    seed: int = 0,
    particles_mean: float = 150.0,
) -> Path:
    """Write a raw R&D file: pandas fixed format, float64 (events, 2101), key ``df``.

    Args:
        path: The file to write (replaced if it exists).
        n_events: Number of events.
        signal_fraction: Share of signal events (label 1.0); the rest is background.
        seed: Random seed.
        particles_mean: Mean number of particles per event (at most 700 are kept).

    Returns:
        The path written.
    """
    _check_count("n_events", n_events)
    rng = np.random.default_rng(seed)
    labels = _labels(rng, n_events, signal_fraction)

    def make(rng: np.random.Generator, chunk: np.ndarray) -> np.ndarray:
        return np.column_stack([_particles(rng, _dijets(rng, chunk), particles_mean), chunk])

    path = Path(path)
    columns = list(range(len(PARTICLE_COLUMNS) + 1))
    with atomic_path(path) as temporary:
        chunks = _chunks(labels, rng, _RAW_CHUNK, make)
        _write_fixed(temporary, columns, n_events, np.float64, chunks)
    return path


def write_tables(
    folder: str | Path, n_per_file: int, seed: int = 0, particles_mean: float = 150.0
) -> list[Path]:
    """Write the seed project's six table files (background/signal x train/val/test).

    Args:
        folder: Where to write ``events_anomalydetection_{class}_table_{split}.h5``.
        n_per_file: Events in each file.
        seed: Random seed.
        particles_mean: Mean number of particles per event.

    Returns:
        The paths written, background files first.
    """
    _check_count("n_per_file", n_per_file)
    rng = np.random.default_rng(seed)

    def make(rng: np.random.Generator, chunk: np.ndarray) -> np.ndarray:
        return _particles(rng, _dijets(rng, chunk), particles_mean)

    paths = []
    for label, class_name in sorted(CLASS_NAMES.items()):
        for split in SPLITS:
            path = Path(folder) / table_file_name(class_name, split)
            labels = np.full(n_per_file, float(label))
            with atomic_path(path) as temporary:
                chunks = _chunks(labels, rng, _RAW_CHUNK, make)
                _write_table(temporary, PARTICLE_COLUMNS, np.float32, chunks)
            paths.append(path)
    return paths


def write_features(
    path: str | Path,
    n_events: int,
    signal_fraction: float = SIGNAL_FRACTION,
    seed: int = 0,
    format: Literal["fixed", "table"] = "fixed",
) -> Path:
    """Write a high-level features file: ``pxj1 ... tau3j2, label`` (GeV), key ``df``.

    Args:
        path: The file to write (replaced if it exists).
        n_events: Number of events.
        signal_fraction: Share of signal events (label 1.0).
        seed: Random seed.
        format: pandas ``"fixed"`` (like the public file) or ``"table"`` format.

    Returns:
        The path written.
    """
    _check_count("n_events", n_events)
    rng = np.random.default_rng(seed)
    labels = _labels(rng, n_events, signal_fraction)

    def make(rng: np.random.Generator, chunk: np.ndarray) -> np.ndarray:
        dijets = _dijets(rng, chunk)
        return np.column_stack([dijets[name] for name in FEATURE_FILE_COLUMNS])

    chunks = _chunks(labels, rng, _FEATURES_CHUNK, make)
    return _write_features_chunks(Path(path), n_events, format, chunks)


def _write_features_chunks(
    path: Path, n_events: int, format: str, chunks: Iterator[np.ndarray]
) -> Path:
    with atomic_path(path) as temporary:
        if format == "fixed":
            _write_fixed(temporary, FEATURE_FILE_COLUMNS, n_events, np.float64, chunks)
        else:
            _write_table(temporary, FEATURE_FILE_COLUMNS, np.float64, chunks)
    return path


def write_extra_background(
    path: str | Path,
    n_events: int,
    seed: int = 0,
    format: Literal["fixed", "table"] = "fixed",
    mjj_range: tuple[float, float] = EXTRA_MJJ_TEV,
) -> Path:
    """Write an extra signal-region background file in the features layout.

    Like the public ``events_anomalydetection_qcd_extra_inneronly_features.h5``
    (about 612k events): background dijets only (``label`` 0) with the features
    file's falling mjj spectrum restricted to ``mjj_range``.

    Args:
        path: The file to write (replaced if it exists).
        n_events: Number of events.
        seed: Random seed (its own stream: never the features file's events).
        format: pandas ``"fixed"`` or ``"table"`` format.
        mjj_range: The mjj range in TeV.

    Returns:
        The path written.
    """
    _check_count("n_events", n_events)
    low, high = mjj_range
    if not 0 < low < high:
        raise ConfigError(f"mjj_range must be two increasing positive TeV values, got {mjj_range}")
    bounds = (1000.0 * low, 1000.0 * high)
    rng = seeded_rng(seed, "lhco_extra")

    def make(rng: np.random.Generator, chunk: np.ndarray) -> np.ndarray:
        dijets = _dijets(rng, chunk, bounds)
        return np.column_stack([dijets[name] for name in FEATURE_FILE_COLUMNS])

    chunks = _chunks(np.zeros(n_events), rng, _FEATURES_CHUNK, make)
    return _write_features_chunks(Path(path), n_events, format, chunks)


def generate(kind: str, out: str | Path, n_events: int, seed: int = 0) -> list[Path]:
    """Write synthetic LHCO files of one kind into a folder (for a CLI).

    Args:
        kind: ``"raw"``, ``"tables"``, ``"features"`` or ``"extra"`` (the extra
            signal-region background).
        out: The output folder (created if needed).
        n_events: Events in the file; for ``"tables"`` events in each of the six files.
        seed: Random seed.

    Returns:
        The files written.

    Raises:
        ConfigError: ``kind`` is unknown or ``n_events`` is not positive.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    out = Path(out)
    if kind == "tables":
        return write_tables(out, n_events, seed=seed)
    if kind == "raw":
        return [write_raw(out / RAW_FILE_NAME, n_events, seed=seed)]
    if kind == "extra":
        return [write_extra_background(out / EXTRA_FILE_NAME, n_events, seed=seed)]
    return [write_features(out / FEATURES_FILE_NAME, n_events, seed=seed)]
