"""The test suite's rule for missing system parts: skip on a workstation, fail in CI."""

from __future__ import annotations

import os

import pytest

__all__ = ["require"]


def require(ok: bool, what: str) -> None:
    """Skip the test if ``ok`` is false, or fail it when ``CI=true``."""
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is required in CI")
        pytest.skip(f"{what} not available")
