"""One row of the ``fedhex doctor`` report: :class:`Check` and its statuses."""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = [
    "FAIL",
    "OK",
    "WARN",
    "Check",
    "Status",
]

Status = Literal["ok", "warn", "FAIL"]
OK: Status = "ok"
WARN: Status = "warn"
FAIL: Status = "FAIL"


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the doctor's report.

    Attributes:
        name: Short name of what was checked.
        status: ``ok``, ``warn`` or ``FAIL``.
        detail: What was found, on one line.
        fix: What to do about a non-ok status (empty when ok).
    """

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        """The row as a JSON-ready mapping (for ``fedhex doctor --json``).

        Returns:
            ``{"name", "status", "detail", "fix"}``.
        """
        return dataclasses.asdict(self)
