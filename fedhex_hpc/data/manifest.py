"""``manifest.json``: the schema, splits, shards, statistics and provenance of a dataset.

The manifest is written last and atomically: a folder without one is an
unfinished conversion, which neither ``fedhex data info/verify`` nor training
accepts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fedhex_hpc.errors import DataError
from fedhex_hpc.io_utils import write_json_atomic

__all__ = ["FORMAT_VERSION", "MANIFEST", "SPLITS", "Manifest", "ShardEntry"]

MANIFEST = "manifest.json"
#: The splits a dataset can hold.
SPLITS = ("train", "val", "test")
#: Written now: Blosc-compressed shards, BLAKE3 source checksums.
FORMAT_VERSION = 2
#: Readable: format 1 had lzf shards and SHA-256 source checksums.
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class ShardEntry:
    """One shard file: where it is, which split and class it holds, and its checksum."""

    path: str
    split: str
    cls: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    """Everything known about a converted dataset."""

    source: str
    columns: list[dict[str, str]]
    splits: dict[str, dict[str, int]]
    shards: list[ShardEntry]
    stats: dict[str, dict[str, dict[str, float]]]
    sources: list[dict[str, Any]]
    options: dict[str, Any]
    dropped_non_finite: int = 0
    created: str = ""
    command: list[str] = field(default_factory=list)
    package_version: str = ""
    format_version: int = FORMAT_VERSION

    def names(self, role: str) -> list[str]:
        """Column names with the given role (feature, condition, weight)."""
        return [c["name"] for c in self.columns if c["role"] == role]

    @property
    def stored_columns(self) -> list[str]:
        """Column order inside every shard."""
        return [c["name"] for c in self.columns]

    def shards_of(self, split: str, classes: list[str] | None = None) -> list[ShardEntry]:
        """Shards of ``split`` (restricted to ``classes`` if given), in manifest order."""
        return [s for s in self.shards if s.split == split and (not classes or s.cls in classes)]

    def write(self, folder: Path) -> None:
        """Write ``folder/manifest.json`` atomically."""
        data = asdict(self)
        write_json_atomic(folder / MANIFEST, data)

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        """Read and check the manifest of a dataset folder."""
        folder = Path(folder)
        path = folder / MANIFEST
        if not folder.is_dir():
            raise DataError(f"dataset {folder} does not exist")
        if not path.is_file():
            raise DataError(
                f"{folder} is not a complete dataset (no {MANIFEST}); if a conversion was "
                "interrupted, rerun the same `fedhex data convert` command to finish it"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON ({exc})") from None
        version = data.get("format_version")
        if version not in READABLE_VERSIONS:
            raise DataError(
                f"{path} has format version {version}; this fedhex-hpc reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
        data["shards"] = [ShardEntry(**s) for s in data["shards"]]
        return cls(**data)
