"""``fedhex doctor`` checks of data and run directories: existence, free space and HDF5
file locking (probed in a child process with a timeout).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from fedhex_hpc.doctor.check import FAIL, OK, WARN, Check
from fedhex_hpc.doctor.common import _last_line, _run

__all__ = [
    "check_directory",
]

#: Seconds the HDF5 locking probe may take (a fresh interpreter importing h5py).
PROBE_TIMEOUT = 20.0
#: Free space below which a directory gets a warning.
LOW_DISK_BYTES = 1 << 30
LOCKING_FIX = "export HDF5_USE_FILE_LOCKING=FALSE"
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")

_WRITE_PROBE = """
import os, sys, tempfile, h5py
fd, name = tempfile.mkstemp(prefix=".fedhex-doctor-", suffix=".h5", dir=sys.argv[1])
os.close(fd)
try:
    with h5py.File(name, "w") as fh:
        fh["x"] = [1]
    with h5py.File(name, "r") as fh:
        fh["x"][()]
finally:
    os.unlink(name)
"""
_READ_PROBE = """
import sys, h5py
with h5py.File(sys.argv[1], "r"):
    pass
"""


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / (1 << 30):.1f} GiB free"


def _hdf5_file_in(directory: Path) -> Path | None:
    """Some HDF5 file under ``directory`` (a dataset folder's shards), if any."""
    return next((p for p in directory.rglob("*") if p.suffix in HDF5_SUFFIXES), None)


def _probe_locking(script: str, target: Path) -> str | None:
    """Run an h5py probe on ``target`` in a child process; its error, or None."""
    code, out = _run(
        [sys.executable, "-c", script, str(target)],
        timeout=PROBE_TIMEOUT,
        label="the HDF5 locking probe",
    )
    return None if code == 0 else _last_line(out)


def _locking_note() -> str:
    """How HDF5 locking behaved when the probe succeeded."""
    mode = os.environ.get("HDF5_USE_FILE_LOCKING", "")
    if mode.upper() == "FALSE":
        return "HDF5 locking off (HDF5_USE_FILE_LOCKING=FALSE)"
    return "HDF5 locking ok"


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing parent."""
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _probe_target(path: Path, directory: Path, writable: bool) -> tuple[str, Path] | None:
    """The probe to run and its target: write in a writable directory, else read an
    HDF5 file that is there; None when neither is possible.
    """
    if writable:
        return _WRITE_PROBE, directory
    target = path if path.suffix in HDF5_SUFFIXES else _hdf5_file_in(directory)
    return None if target is None else (_READ_PROBE, target)


def check_directory(path: Path, name: str = "data") -> Check:
    """A data path (file or directory) or run directory: exists, free space, HDF5 locking.

    HDF5 locking is probed in a child process by writing then reading a temporary file
    in the directory with default locking; a read-only data directory is probed by
    opening an HDF5 file in it read-only. A run directory that does not exist yet is
    judged by the existing parent it would be created in.

    Args:
        path: The path to check.
        name: ``data`` (must exist; may be read-only) or ``run-dir`` (must be writable).

    Returns:
        ``ok``; ``warn`` on low space or when locking cannot be probed; ``FAIL`` when
        the path is missing, a run directory is not writable, or HDF5 locking fails.
    """
    path = Path(path)
    if path.exists():
        directory = path if path.is_dir() else path.parent
        where = str(path)
    elif name == "run-dir":
        directory = _existing_ancestor(path)
        where = f"{path} (to be created in {directory})"
    else:
        return Check(
            name,
            FAIL,
            f"{path} does not exist",
            "give an existing dataset folder or file (`fedhex data convert` makes one)",
        )
    writable = os.access(directory, os.W_OK | os.X_OK)
    free = shutil.disk_usage(directory).free
    found = f"{where}: {'writable' if writable else 'read-only'}, {_gib(free)}"
    if name == "run-dir" and not writable:
        return Check(name, FAIL, found, "choose a run directory on a writable file system")
    probe = _probe_target(path, directory, writable)
    if probe is None:
        return Check(
            name,
            WARN,
            f"{found}, no HDF5 file to probe locking on",
            f"if reading fails with 'unable to lock file': {LOCKING_FIX}",
        )
    error = _probe_locking(*probe)
    if error is not None and ("lock" in error.lower() or "timed out" in error):
        return Check(name, FAIL, f"{found}, HDF5 file locking fails: {error}", LOCKING_FIX)
    if error is not None:
        return Check(
            name,
            FAIL,
            f"{found}, HDF5 probe failed: {error}",
            "check that the file system is mounted and writable",
        )
    if free < LOW_DISK_BYTES:
        return Check(
            name,
            WARN,
            f"{found}, {_locking_note()}",
            f"free space on {directory} or choose another directory",
        )
    return Check(name, OK, f"{found}, {_locking_note()}")
