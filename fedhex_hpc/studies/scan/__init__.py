"""Profile-likelihood scans as job arrays: one task per grid point of a planned scan."""

from __future__ import annotations

from fedhex_hpc.studies.scan.folder import ScanFolder
from fedhex_hpc.studies.scan.kind import ScanKind

__all__ = ["ScanFolder", "ScanKind"]
