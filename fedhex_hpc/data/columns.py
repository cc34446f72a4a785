"""Read named columns from ``.npy`` (structured), ``.npz`` or HDF5 files.

HDF5 layouts: a group whose members are 1-D datasets named like the columns, or a
compound (structured) dataset. ``key`` selects the group or dataset (default: the
file root). Files are opened read-only with HDF5 file locking off, which cluster
file systems without lock support need.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fedhex_hpc.errors import DataError, listing, suggest

if TYPE_CHECKING:
    import h5py

__all__ = ["read_columns"]

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def _missing(path: Path, where: str, name: str, available: list[str]) -> DataError:
    return DataError(
        f"{path}{where}: no column {name!r}{suggest(name, available)}; "
        f"available: {', '.join(available) or 'none'}"
    )


def _no_key(path: Path, fh: h5py.File, key: str) -> DataError:
    """The error for a ``key`` that is not in the open HDF5 file ``fh``.

    It names the keys that could hold columns: groups and compound datasets.
    """
    import h5py

    keys: list[str] = []

    def table(name: str, node: object) -> None:
        if isinstance(node, h5py.Group) or getattr(node.dtype, "names", None):
            keys.append(name)

    fh.visititems(table)
    return DataError(
        f"{path}: no key {key!r}{suggest(key, keys, n=3)}; keys in the file: {listing(keys)}"
    )


def _read_hdf5(path: Path, names: list[str], key: str, rows: slice) -> dict[str, np.ndarray]:
    import h5py

    try:
        fh = h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise DataError(f"{path} is not a readable HDF5 file ({exc})") from None
    with fh:
        if key and key not in fh:
            raise _no_key(path, fh, key)
        node = fh[key] if key else fh
        where = f" key {key!r}" if key else ""
        if isinstance(node, h5py.Dataset):
            fields = list(node.dtype.names or [])
            if not fields:
                raise DataError(f"{path}{where} is a plain dataset; expected named columns")
            for name in names:
                if name not in fields:
                    raise _missing(path, where, name, fields)
            data = node[rows]
            return {name: np.asarray(data[name]) for name in names}
        available = [k for k, v in node.items() if isinstance(v, h5py.Dataset)]
        for name in names:
            if name not in available:
                raise _missing(path, where, name, available)
        return {name: np.asarray(node[name][rows]).reshape(-1) for name in names}


def read_columns(
    path: str | Path, names: list[str], key: str = "", rows: slice = slice(None)
) -> dict[str, np.ndarray]:
    """Return the rows ``rows`` of the columns ``names`` of the file ``path`` as 1-D arrays.

    HDF5 files are read only for the requested rows; numpy files are loaded whole.

    Raises:
        DataError: the file is missing or unreadable, or the HDF5 ``key`` or a
            column is absent (the message names the nearest existing ones).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        columns = _read_hdf5(path, names, key, rows)
    elif suffix in (".npy", ".npz"):
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path} is not a readable numpy file ({exc})") from None
        available = list(loaded.files if suffix == ".npz" else (loaded.dtype.names or []))
        if not available:
            raise DataError(
                f"{path} is a plain array; expected a structured array with named fields"
            )
        for name in names:
            if name not in available:
                raise _missing(path, "", name, available)
        columns = {name: np.asarray(loaded[name]).reshape(-1)[rows] for name in names}
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .npy, .npz or .h5")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise DataError(f"{path}: columns {names} have different lengths {sorted(lengths)}")
    return columns
