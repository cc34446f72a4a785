"""Training output: a log line every N epochs for batch logs, a live line on a TTY."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` for a non-negative number of seconds."""
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Reports epochs to ``stream``: periodic lines always, an overwritten line on a TTY."""

    def __init__(self, max_epochs: int, log_every: int, stream: TextIO | None = None) -> None:
        self.max_epochs = max_epochs
        self.log_every = log_every
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self.first_epoch: int | None = None

    def epoch(self, epoch: int, loss: float, val_loss: float, events_per_s: float) -> None:
        """Report the 1-based ``epoch`` that just finished."""
        if self.first_epoch is None:
            self.first_epoch = epoch - 1
        done = epoch - self.first_epoch
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (self.max_epochs - epoch)
        line = (
            f"epoch {epoch}/{self.max_epochs}  loss {loss:.5f}  val_loss {val_loss:.5f}  "
            f"{events_per_s:,.0f} ev/s  ETA {format_duration(eta)}"
        )
        if epoch % self.log_every == 0 or epoch == self.max_epochs:
            self.message(line)
        elif self.live:
            self.stream.write("\r" + line)
            self.stream.flush()

    def message(self, text: str) -> None:
        """Print a whole line (clearing a live line first)."""
        prefix = "\r\033[K" if self.live else ""
        self.stream.write(f"{prefix}{text}\n")
        self.stream.flush()
