"""User-facing errors: printed as one line by the CLI, never as a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "ConfigError",
    "DataError",
    "FedhexError",
    "Preempted",
    "RunDirError",
    "TrainingError",
    "listing",
    "suggest",
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


def suggest(name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """A hint naming the ``n`` choices nearest to a misspelled ``name``, or ``""``.

    Args:
        name: What the user wrote.
        choices: The names that exist.
        n: How many near names to offer at most.
        cutoff: Similarity (0-1, :func:`difflib.get_close_matches`) a choice needs.

    Returns:
        ``" (did you mean 'x'?)"`` (``'x' or 'y'`` for several), to append to a
        message, or ``""`` if no choice is near.
    """
    near = [repr(c) for c in difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)]
    if not near:
        return ""
    names = near[0] if len(near) == 1 else f"{', '.join(near[:-1])} or {near[-1]}"
    return f" (did you mean {names}?)"


def listing(names: Iterable[str], limit: int = 12) -> str:
    """The first ``limit`` of ``names``, comma-separated, for a one-line message.

    Returns:
        ``"a, b, ... (40 in all)"`` when names are left off, ``"none"`` for no names.
    """
    names = [str(name) for name in names]
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return shown + more if names else "none"


#: Exit status of a process that stopped on a scheduler signal and wants a resume
#: (EX_TEMPFAIL: "try again later").
PREEMPTED_EXIT_CODE = 75


class Preempted(Exception):
    """Training stopped on a scheduler signal after writing a checkpoint; resume it."""
