"""The study kinds, and :func:`open_study`, which tells a folder's kind from its marker.

Adding a kind: a subpackage of :mod:`fedhex_hpc.studies` with a class following
:class:`~fedhex_hpc.studies.base.StudyKind` (its folder writes ``study.json`` with
its ``kind``), listed in :data:`KINDS`. ``fedhex submit``, ``task``, ``status``,
``retry`` and ``collect`` then work on its folders.
"""

from __future__ import annotations

import json
from pathlib import Path

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.base import MARKER, StudyKind
from fedhex_hpc.studies.interpolation.kind import InterpolationKind
from fedhex_hpc.studies.lhco_anomaly.kind import LhcoAnomalyKind
from fedhex_hpc.studies.mixlearn.kind import MixlearnKind
from fedhex_hpc.studies.scan.kind import ScanKind
from fedhex_hpc.studies.sweep.kind import SweepKind
from fedhex_hpc.studies.toys.kind import ToysKind

__all__ = ["KINDS", "open_study"]

KINDS: dict[str, StudyKind] = {
    kind.name: kind
    for kind in (
        SweepKind(),
        MixlearnKind(),
        InterpolationKind(),
        ToysKind(),
        ScanKind(),
        LhcoAnomalyKind(),
    )
}


def open_study(path: str | Path) -> StudyKind:
    """The kind of the study in ``path``.

    Raises:
        ConfigError: no marker, or a kind this version does not know; the message
            lists the kinds.
    """
    marker = Path(path) / MARKER
    kinds = ", ".join(KINDS)
    if not marker.is_file():
        raise ConfigError(f"{path} is not a study folder (no {MARKER}); study kinds: {kinds}")
    try:
        kind = json.loads(marker.read_text(encoding="utf-8")).get("kind")
    except (json.JSONDecodeError, AttributeError):
        raise ConfigError(f"{marker} is not a study marker (not a JSON object)") from None
    if kind not in KINDS:
        raise ConfigError(f"{path} holds a study of unknown kind {kind!r}; study kinds: {kinds}")
    return KINDS[kind]
