"""User-facing errors: printed as one line by the CLI, never as a traceback."""

from __future__ import annotations

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "ConfigError",
    "DataError",
    "FedhexError",
    "Preempted",
    "RunDirError",
    "TrainingError",
]


class FedhexError(Exception):
    """A mistake in the user's input or environment; the message is the whole report."""

    prefix = "error"

    def __str__(self) -> str:
        return f"{self.prefix}: {super().__str__()}"


class ConfigError(FedhexError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""

    prefix = "config error"


class DataError(FedhexError):
    """Input data is missing, malformed, empty or contains non-finite values."""

    prefix = "data error"


class RunDirError(FedhexError):
    """A run directory is missing or is not a fedhex run."""

    prefix = "run error"


class TrainingError(FedhexError):
    """Training cannot continue (for example a non-finite loss)."""

    prefix = "training error"


#: Exit status of a process that stopped on a scheduler signal and wants a resume
#: (EX_TEMPFAIL: "try again later").
PREEMPTED_EXIT_CODE = 75


class Preempted(Exception):
    """Training stopped on a scheduler signal after writing a checkpoint; resume it."""
