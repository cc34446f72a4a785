"""LHC Olympics 2020 R&D files: raw particles, the seed's table files, jet features.

Three public layouts are read, all written by pandas under the key ``df``:

* ``events_anomalydetection.h5`` (:class:`LHCORawSource`): pandas *fixed* format,
  one float64 block ``df/block0_values`` of shape (events, 2101): 700 particles x
  (pT [GeV], eta, phi), zero-padded, then the label (1 = signal, 0 = background).
  Columns are named ``pt_i, eta_i, phi_i`` (i = 0..699) and ``class``.
* ``events_anomalydetection_{background|signal}_table_{train|val|test}.h5``
  (:class:`LHCOTableSource`): pandas *table* format, float32, the 2100 particle
  columns named ``pt_i, eta_i, phi_i``; the class comes from the file name.
* ``events_anomalydetection_v2.features.h5`` (:class:`LHCOFeaturesSource`): the two
  leading jets' momenta, masses and n-subjettiness (``pxj1 ... tau3j2``, GeV) and
  ``label``, in fixed or table format; turned into the ANODE/CATHODE features
  ``mj1, delta_mj, tau21_j1, tau21_j2`` (and ``tau32_j1, tau32_j2``) conditioned on
  ``mjj`` (TeV). The extra signal-region background
  ``events_anomalydetection_qcd_extra_inneronly_features.h5`` has the same layout;
  it is read with ``background_only=True`` (its ``label`` column may be absent).

Fixed-format files are sliced by rows with h5py (pandas reads them whole); all
files are opened read-only with HDF5 file locking off.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from fedhex_hpc.data.sources.base import CLASS_NAMES, Column, Partition
from fedhex_hpc.errors import ConfigError, DataError, listing, suggest

__all__ = [
    "BASELINE_FEATURES",
    "EXTENDED_FEATURES",
    "EXTRA_FILE_NAME",
    "FEATURES_FILE_NAME",
    "FEATURE_FILE_COLUMNS",
    "FEATURE_SETS",
    "KEY",
    "N_PARTICLES",
    "PARTICLE_COLUMNS",
    "RAW_FILE_NAME",
    "SPLITS",
    "LHCOFeaturesSource",
    "LHCORawSource",
    "LHCOTableSource",
    "anode_features",
    "feature_names",
    "table_file_name",
]

#: Public names of the raw and high-level features files.
RAW_FILE_NAME = "events_anomalydetection.h5"
FEATURES_FILE_NAME = "events_anomalydetection_v2.features.h5"
#: Public name of the extra simulated background of the signal region (features layout).
EXTRA_FILE_NAME = "events_anomalydetection_qcd_extra_inneronly_features.h5"
#: The four ANODE/CATHODE features (masses in TeV) and the extended set with tau32.
BASELINE_FEATURES = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
EXTENDED_FEATURES = (*BASELINE_FEATURES, "tau32_j1", "tau32_j2")
#: Named feature sets of the anomaly searches.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "baseline": BASELINE_FEATURES,
    "extended": EXTENDED_FEATURES,
}
#: The pandas key of every LHCO file.
KEY = "df"
#: Particle slots per event in the raw file.
N_PARTICLES = 700
#: Names given to the raw file's 2100 particle columns (the file itself numbers them).
PARTICLE_COLUMNS = [f"{q}_{i}" for i in range(N_PARTICLES) for q in ("pt", "eta", "phi")]
#: Columns of the high-level features file, in file order.
FEATURE_FILE_COLUMNS = [
    f"{q}j{jet}" for jet in (1, 2) for q in ("px", "py", "pz", "m", "tau1", "tau2", "tau3")
] + ["label"]
#: Splits of the seed project's table files.
SPLITS = ("train", "val", "test")

_RAW_WIDTH = len(PARTICLE_COLUMNS) + 1
_SLAB_BYTES = 16 << 20
_PARTICLE_UNITS = {"pt": "GeV", "eta": "", "phi": "rad"}
_TABLE_NAME = re.compile(r"(?:^|_)(background|signal)(?:_|\.|$)")
_CLASS_CODES = {name: code for code, name in CLASS_NAMES.items()}
_JET_QUANTITIES = ("px", "py", "pz", "m", "tau1", "tau2", "tau3")


def feature_names(feature_set: str) -> tuple[str, ...]:
    """The columns of a named feature set (a key of :data:`FEATURE_SETS`), in order.

    Raises:
        ConfigError: An unknown feature set; the message lists them.
    """
    if feature_set not in FEATURE_SETS:
        raise ConfigError(
            f"unknown feature set {feature_set!r}{suggest(str(feature_set), FEATURE_SETS)}; "
            f"feature sets: {', '.join(FEATURE_SETS)}"
        )
    return FEATURE_SETS[feature_set]


def table_file_name(class_name: str, split: str) -> str:
    """The seed project's name for the table file of one class and split.

    Args:
        class_name: ``"background"`` or ``"signal"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
    """
    return f"events_anomalydetection_{class_name}_table_{split}.h5"


def anode_features(columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The ANODE/CATHODE features of jet pairs, masses in TeV.

    Args:
        columns: Arrays ``pxj1 ... tau3j2`` of the features file (GeV).

    Returns:
        Columns ``mj1`` (lighter jet mass), ``delta_mj`` (heavier minus lighter),
        ``tau21_j1``/``tau21_j2`` (tau2/tau1 of the lighter/heavier jet, 0 where
        tau1 is 0), ``tau32_j1``/``tau32_j2`` (tau3/tau2 likewise, 0 where tau2 is
        0) and ``mjj`` (invariant mass of the pair).
    """
    jets = [
        {q: np.asarray(columns[f"{q}j{jet}"], np.float64) for q in _JET_QUANTITIES}
        for jet in (1, 2)
    ]
    momentum = {q: jets[0][q] + jets[1][q] for q in ("px", "py", "pz")}
    energy = sum(_energy(jet) for jet in jets)
    mjj2 = energy**2 - momentum["px"] ** 2 - momentum["py"] ** 2 - momentum["pz"] ** 2
    swap = jets[0]["m"] > jets[1]["m"]
    light, heavy = ({q: np.where(swap, b[q], a[q]) for q in a} for a, b in (jets, jets[::-1]))
    return pd.DataFrame(
        {
            "mj1": light["m"] / 1000.0,
            "delta_mj": (heavy["m"] - light["m"]) / 1000.0,
            "tau21_j1": _ratio(light, "tau2", "tau1"),
            "tau21_j2": _ratio(heavy, "tau2", "tau1"),
            "tau32_j1": _ratio(light, "tau3", "tau2"),
            "tau32_j2": _ratio(heavy, "tau3", "tau2"),
            "mjj": np.sqrt(np.clip(mjj2, 0.0, None)) / 1000.0,
        }
    )


def _energy(jet: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.sqrt(jet["px"] ** 2 + jet["py"] ** 2 + jet["pz"] ** 2 + jet["m"] ** 2)


def _ratio(jet: Mapping[str, np.ndarray], top: str, bottom: str) -> np.ndarray:
    out = np.zeros_like(jet[bottom])
    return np.divide(jet[top], jet[bottom], out=out, where=jet[bottom] != 0)


# ----------------------------------------------------------------------------- files


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        reason = str(exc).splitlines()[0]
        raise DataError(
            f"{path} is not a readable HDF5 file (truncated or not HDF5: {reason})"
        ) from None


def _names(fh: h5py.File) -> str:
    names: list[str] = []
    fh.visit(names.append)
    return listing(names)


def _node(fh: h5py.File, path: Path, name: str, kind: type) -> h5py.Dataset | h5py.Group:
    node = fh.get(name)
    if not isinstance(node, kind):
        raise DataError(f"{path}: no {kind.__name__.lower()} {name!r}; found keys: {_names(fh)}")
    return node


def _pandas_format(fh: h5py.File, path: Path, key: str) -> str:
    kind = _node(fh, path, key, h5py.Group).attrs.get("pandas_type", b"")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    formats = {"frame": "fixed", "frame_table": "table"}
    if kind not in formats:
        raise DataError(
            f"{path}: key {key!r} is not a pandas DataFrame (pandas_type {kind or 'missing'!r})"
        )
    return formats[kind]


def _check_rows(path: Path, key: str, rows: int) -> int:
    if rows == 0:
        raise DataError(f"{path}: key {key!r} holds no rows")
    return rows


def _row_ranges(rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive integer, got {chunk_rows}")
    return [(start, min(start + chunk_rows, rows)) for start in range(0, rows, chunk_rows)]


def _classes(label: np.ndarray, path: Path, column: str, first_row: int) -> np.ndarray:
    bad = np.flatnonzero((label != 0) & (label != 1))
    if bad.size:
        row = bad[0]
        raise DataError(
            f"{path}: column {column!r} row {first_row + row}: "
            f"expected label 0 or 1, found {label[row]:g}"
        )
    return label.astype(np.int64)


def _mapped_rows(fd: int, first: int, rows: int, row_shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A read-only array over ``rows`` rows mapped from file offset ``first``."""
    size = rows * dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
    aligned = first - first % mmap.ALLOCATIONGRANULARITY
    mapped = mmap.mmap(fd, first + size - aligned, access=mmap.ACCESS_READ, offset=aligned)
    # unmapped once the returned array (the only reference) is gone
    flat = np.frombuffer(mapped, dtype, size // dtype.itemsize, first - aligned)
    return flat.reshape(rows, *row_shape)


def _mapped_slice(dataset: h5py.Dataset, start: int, stop: int, dtype: type) -> np.ndarray | None:
    """Rows of a contiguous, unfiltered dataset cast straight from the memory-mapped file.

    pandas stores fixed-format blocks this way. Reading them through a mapping of
    the page cache instead of HDF5's read-and-convert halves the time of a raw
    LHCO partition; slabs of ``_SLAB_BYTES`` keep little of the file mapped at a
    time. ``None`` for any other layout, or if the file is shorter than the
    dataset claims (a truncated file; h5py then names the error).
    """
    offset = dataset.id.get_offset()
    if offset is None or dataset.chunks is not None or dataset.external or dataset.ndim == 0:
        return None
    row_shape = dataset.shape[1:]
    row_bytes = dataset.dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
    out = np.empty((stop - start, *row_shape), dtype)
    slab = max(1, _SLAB_BYTES // max(1, row_bytes))
    with open(dataset.file.filename, "rb") as fh:
        if not len(out) or os.fstat(fh.fileno()).st_size < offset + stop * row_bytes:
            return None
        for low in range(0, len(out), slab):
            rows = min(slab, len(out) - low)
            first = offset + (start + low) * row_bytes
            out[low : low + rows] = _mapped_rows(fh.fileno(), first, rows, row_shape, dataset.dtype)
    return out


def _read_slice(dataset: h5py.Dataset, start: int, stop: int, dtype: type | None) -> np.ndarray:
    dtype = dtype or dataset.dtype
    mapped = _mapped_slice(dataset, start, stop, dtype)
    if mapped is not None:
        return mapped
    # into np.empty, which NumPy backs with huge pages: h5py's own result array is
    # zero-filled memory that page-faults every 4 kB (17,000 times per 8,192 raw events)
    out = np.empty((stop - start, *dataset.shape[1:]), dtype)
    dataset.read_direct(out, np.s_[start:stop])
    return out


def _read_rows(
    path: Path, names: Sequence[str], start: int, stop: int, dtype: type | None = None
) -> dict[str, np.ndarray]:
    """Rows ``start:stop`` of the datasets ``names``, cast by HDF5 to ``dtype`` while
    reading if given."""
    with _open(path) as fh:
        try:
            return {name: _read_slice(fh[name], start, stop, dtype) for name in names}
        except OSError as exc:
            reason = str(exc).splitlines()[0]
            raise DataError(f"{path}: cannot read rows {start}-{stop} ({reason})") from None


def _partitions(
    path: Path, rows: int, chunk_rows: int, read: Callable[..., pd.DataFrame], **kwargs: object
) -> list[Partition]:
    return [
        Partition(
            index=index,
            description=f"{path.name} rows {start}-{stop}",
            read=partial(read, path=path, start=start, stop=stop, **kwargs),
            rows=stop - start,
        )
        for index, (start, stop) in enumerate(_row_ranges(rows, chunk_rows))
    ]


def _pandas_columns(path: Path, key: str) -> list[str]:
    return [str(name) for name in pd.read_hdf(path, key, start=0, stop=0).columns]


_PARTICLE_SOURCE_COLUMNS = (
    *(Column(name, "feature", _PARTICLE_UNITS[name.split("_")[0]]) for name in PARTICLE_COLUMNS),
    Column("class", "class"),
)
_FEATURES_SOURCE_COLUMNS = (
    Column("mj1", "feature", "TeV"),
    Column("delta_mj", "feature", "TeV"),
    *(Column(name, "feature") for name in EXTENDED_FEATURES[2:]),
    Column("mjj", "condition", "TeV"),
    Column("class", "class"),
)


# ----------------------------------------------------------------------------- raw


def _read_raw(path: Path, key: str, start: int, stop: int) -> pd.DataFrame:
    # float32 is what the store keeps: casting inside HDF5 halves the bytes copied
    name = f"{key}/block0_values"
    block = _read_rows(path, [name], start, stop, np.float32)[name]
    index = pd.RangeIndex(start, stop)
    frame = pd.DataFrame(block[:, :-1], columns=PARTICLE_COLUMNS, index=index, copy=False)
    frame["class"] = _classes(block[:, -1], path, f"label (column {_RAW_WIDTH - 1})", start)
    return frame


class LHCORawSource:
    """The raw R&D file ``events_anomalydetection.h5`` (pandas fixed format).

    Partitions are row ranges of ``df/block0_values``, read as float32; each is
    ``chunk_rows`` x 2101 values in memory (84 MB at the default 10,000 rows).
    """

    name = "lhco_raw"

    def __init__(self, path: str | Path, chunk_rows: int = 10_000, key: str = KEY) -> None:
        """Check the file's layout.

        Args:
            path: The raw HDF5 file.
            chunk_rows: Events per partition.
            key: The pandas key.

        Raises:
            DataError: The file is missing, not HDF5 or truncated, lacks
                ``<key>/block0_values``, or that block is not (events, 2101) floats.
        """
        self.columns = list(_PARTICLE_SOURCE_COLUMNS)
        self.path = Path(path)
        self.key = key
        self.chunk_rows = chunk_rows
        with _open(self.path) as fh:
            values = _node(fh, self.path, f"{key}/block0_values", h5py.Dataset)
            shape, dtype = values.shape, values.dtype
        found = shape[1] if len(shape) == 2 else f"shape {shape}"
        if len(shape) != 2 or shape[1] != _RAW_WIDTH:
            raise DataError(
                f"{self.path}: {key}/block0_values: expected {_RAW_WIDTH} columns, found {found}"
            )
        if not np.issubdtype(dtype, np.floating):
            raise DataError(f"{self.path}: {key}/block0_values: expected floats, found {dtype}")
        self.rows = _check_rows(self.path, key, shape[0])

    def partitions(self) -> list[Partition]:
        """Row ranges of ``chunk_rows`` events, in file order."""
        return _partitions(self.path, self.rows, self.chunk_rows, _read_raw, key=self.key)

    def source_files(self) -> list[Path]:
        """The raw file."""
        return [self.path]


# ----------------------------------------------------------------------------- tables


def _read_table(path: Path, key: str, start: int, stop: int, label: int) -> pd.DataFrame:
    frame = pd.read_hdf(path, key, start=start, stop=stop)
    frame["class"] = np.full(len(frame), label, np.int64)
    return frame


def _table_class(path: Path) -> int:
    match = _TABLE_NAME.search(path.name)
    if match is None:
        raise DataError(
            f"{path}: cannot tell the class from the file name; expected a name like "
            f"{table_file_name('signal', 'train')} containing 'background' or 'signal'"
        )
    return _CLASS_CODES[match.group(1)]


class _TableFile:
    """One checked table file: its class and row count."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.label = _table_class(path)
        with _open(path) as fh:
            if _pandas_format(fh, path, key) != "table":
                raise DataError(f"{path}: key {key!r}: expected pandas table format, found fixed")
            self.rows = _check_rows(
                path, key, _node(fh, path, f"{key}/table", h5py.Dataset).shape[0]
            )
        columns = _pandas_columns(path, key)
        if columns != PARTICLE_COLUMNS:
            raise DataError(
                f"{path}: key {key!r}: expected {len(PARTICLE_COLUMNS)} columns "
                f"pt_0, eta_0, phi_0, ..., phi_{N_PARTICLES - 1}; found {len(columns)} "
                f"({listing(columns, 3)})"
            )


class LHCOTableSource:
    """The seed project's table files, one per class and split.

    Each file (pandas table format, key ``df``) holds float32 columns ``pt_i,
    eta_i, phi_i`` (i = 0..699); its name says ``background`` or ``signal``.
    """

    name = "lhco_tables"

    def __init__(
        self, paths: Sequence[str | Path], chunk_rows: int = 10_000, key: str = KEY
    ) -> None:
        """Check every file.

        Args:
            paths: The table files.
            chunk_rows: Events per partition.
            key: The pandas key.

        Raises:
            DataError: No files, a file is missing/unreadable/not a pandas table,
                its name names no class, or its columns differ.
        """
        if not paths:
            raise DataError("no LHCO table files given")
        self.columns = list(_PARTICLE_SOURCE_COLUMNS)
        self.key = key
        self.chunk_rows = chunk_rows
        self.files = [_TableFile(Path(path), key) for path in paths]

    def partitions(self) -> list[Partition]:
        """Row ranges of ``chunk_rows`` events, file by file."""
        parts = [
            part
            for table in self.files
            for part in _partitions(
                table.path,
                table.rows,
                self.chunk_rows,
                _read_table,
                key=self.key,
                label=table.label,
            )
        ]
        return [Partition(i, p.description, p.read, p.rows) for i, p in enumerate(parts)]

    def source_files(self) -> list[Path]:
        """The table files, in the order given."""
        return [table.path for table in self.files]


# ----------------------------------------------------------------------------- features


def _features_frame(
    columns: Mapping[str, np.ndarray], path: Path, start: int, background_only: bool
) -> pd.DataFrame:
    frame = anode_features(columns)
    frame.index = pd.RangeIndex(start, start + len(frame))
    if "label" not in columns:  # only read so for background_only files
        frame["class"] = np.zeros(len(frame), np.int64)
        return frame
    frame["class"] = _classes(np.asarray(columns["label"]), path, "label", start)
    signal = np.flatnonzero(frame["class"].to_numpy())
    if background_only and signal.size:
        raise DataError(
            f"{path}: column 'label' row {start + signal[0]}: expected 0 (a background-only "
            "file), found 1"
        )
    return frame


def _read_features_fixed(
    path: Path,
    key: str,
    start: int,
    stop: int,
    locations: tuple[tuple[str, str, int], ...],
    background_only: bool = False,
) -> pd.DataFrame:
    blocks = _read_rows(path, sorted({f"{key}/{block}" for _, block, _ in locations}), start, stop)
    columns = {name: blocks[f"{key}/{block}"][:, index] for name, block, index in locations}
    return _features_frame(columns, path, start, background_only)


def _read_features_table(
    path: Path, key: str, start: int, stop: int, names: tuple[str, ...], background_only: bool
) -> pd.DataFrame:
    frame = pd.read_hdf(path, key, start=start, stop=stop, columns=list(names))
    columns = {name: frame[name].to_numpy() for name in frame}
    return _features_frame(columns, path, start, background_only)


def _fixed_locations(fh: h5py.File, path: Path, key: str) -> dict[str, tuple[str, int]]:
    """Where pandas put each column of a fixed-format frame: (block dataset, column)."""
    group = fh[key]
    locations = {}
    for block in range(int(group.attrs.get("nblocks", 0))):
        items = _node(fh, path, f"{key}/block{block}_items", h5py.Dataset)[()]
        for index, item in enumerate(items):
            name = item.decode() if isinstance(item, bytes) else str(item)
            locations[name] = (f"block{block}_values", index)
    return locations


def _missing_columns(path: Path, key: str, found: Sequence[str], needed: Sequence[str]) -> None:
    missing = [name for name in needed if name not in found]
    if missing:
        raise DataError(
            f"{path}: key {key!r}: missing columns {listing(missing)} of the features "
            f"file; found {listing(found)}"
        )


class LHCOFeaturesSource:
    """The high-level features file ``events_anomalydetection_v2.features.h5``.

    Reads the jets' momenta, masses and n-subjettiness in chunks (fixed format by
    h5py row slices, table format by pandas ``start``/``stop``) and gives the
    ANODE/CATHODE features (see :func:`anode_features`) with ``mjj`` as condition.
    The extra signal-region background file is read the same way with
    ``background_only=True``.
    """

    name = "lhco_features"

    def __init__(
        self,
        path: str | Path,
        chunk_rows: int = 100_000,
        key: str = KEY,
        background_only: bool = False,
    ) -> None:
        """Check the file's layout.

        Args:
            path: The features file (pandas fixed or table format).
            chunk_rows: Events per partition.
            key: The pandas key.
            background_only: A file of background events only (the extra
                signal-region background): its ``label`` column may be absent
                (every event is then background) and a label 1 is an error.

        Raises:
            DataError: The file is missing, not HDF5 or truncated, has no pandas
                frame under ``key``, or lacks one of the 15 expected columns
                (``label`` may be absent for ``background_only``).
        """
        self.columns = list(_FEATURES_SOURCE_COLUMNS)
        self.path = Path(path)
        self.key = key
        self.chunk_rows = chunk_rows
        self.background_only = background_only
        with _open(self.path) as fh:
            self.format = _pandas_format(fh, self.path, key)
            fixed = self.format == "fixed"
            rows_node = f"{key}/axis1" if fixed else f"{key}/table"
            rows = _node(fh, self.path, rows_node, h5py.Dataset).shape[0]
            locations = _fixed_locations(fh, self.path, key) if fixed else None
        found = list(locations) if locations is not None else _pandas_columns(self.path, key)
        jet_columns = FEATURE_FILE_COLUMNS[:-1]
        _missing_columns(self.path, key, found, jet_columns)
        self.has_labels = "label" in found
        if not (self.has_labels or background_only):
            raise DataError(
                f"{self.path}: key {key!r}: no column 'label'; expected labelled events "
                "(1 signal, 0 background)"
            )
        self._names = tuple(FEATURE_FILE_COLUMNS if self.has_labels else jet_columns)
        self.rows = _check_rows(self.path, key, rows)
        self._locations = (
            None if locations is None else tuple((name, *locations[name]) for name in self._names)
        )

    def partitions(self) -> list[Partition]:
        """Row ranges of ``chunk_rows`` events, in file order."""
        if self._locations is None:
            return _partitions(
                self.path,
                self.rows,
                self.chunk_rows,
                _read_features_table,
                key=self.key,
                names=self._names,
                background_only=self.background_only,
            )
        return _partitions(
            self.path,
            self.rows,
            self.chunk_rows,
            _read_features_fixed,
            key=self.key,
            locations=self._locations,
            background_only=self.background_only,
        )

    def source_files(self) -> list[Path]:
        """The features file."""
        return [self.path]
