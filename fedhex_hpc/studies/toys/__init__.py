"""Toy studies: seeded pseudo-experiments per truth point as a job array, bias and coverage."""

from __future__ import annotations

from fedhex_hpc.studies.toys.folder import ToysFolder, plan_study
from fedhex_hpc.studies.toys.kind import ToysKind

__all__ = ["ToysFolder", "ToysKind", "plan_study"]
