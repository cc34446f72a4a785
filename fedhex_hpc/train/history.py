"""history.csv: one row per finished epoch, appended and flushed as training goes."""

from __future__ import annotations

import csv
from pathlib import Path

from fedhex_hpc.io_utils import write_text_atomic

__all__ = ["HISTORY_COLUMNS", "History"]

HISTORY_COLUMNS = ("epoch", "loss", "val_loss", "learning_rate", "seconds", "events_per_s")


class History:
    """Append-only epoch log that can be cut back to a checkpoint's epoch on resume."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate(self, last_epoch: int) -> None:
        """Keep only rows with ``epoch <= last_epoch`` (atomically); create the header."""
        rows = []
        if self.path.exists():
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) <= last_epoch]
        lines = [",".join(HISTORY_COLUMNS)]
        lines += [",".join(r[c] for c in HISTORY_COLUMNS) for r in rows]
        write_text_atomic(self.path, "\n".join(lines) + "\n")

    def append(self, row: dict[str, float]) -> None:
        """Add one epoch's row and flush it to disk."""
        with open(self.path, "a", newline="") as fh:
            fh.write(
                ",".join(
                    repr(float(row[c])) if c != "epoch" else str(int(row[c]))
                    for c in HISTORY_COLUMNS
                )
                + "\n"
            )
            fh.flush()
