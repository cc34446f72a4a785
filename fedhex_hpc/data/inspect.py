"""``fedhex data info`` and ``fedhex data verify``: describe and check a dataset folder."""

from __future__ import annotations

from pathlib import Path

from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.data.shards import sha256_file, shard_rows
from fedhex_hpc.errors import DataError

__all__ = ["describe", "verify"]


def describe(folder: str | Path) -> str:
    """A human-readable summary of a dataset: columns, splits, statistics, provenance."""
    manifest = Manifest.read(folder)
    lines = [
        f"dataset {folder}: {manifest.source}, made {manifest.created} "
        f"by fedhex-hpc {manifest.package_version}",
        f"shards: {len(manifest.shards)}, {sum(s.bytes for s in manifest.shards) / 1e6:,.1f} MB; "
        f"rows dropped for NaN/Inf: {manifest.dropped_non_finite:,}",
        "",
        "split       " + "".join(f"{cls:>14}" for cls in ("background", "signal")),
    ]
    for split, counts in manifest.splits.items():
        lines.append(
            f"{split:<12}" + "".join(f"{counts.get(c, 0):>14,}" for c in ("background", "signal"))
        )
    lines += ["", f"{'column':<16}{'role':<11}{'min':>12}{'max':>12}{'mean':>12}{'std':>12}"]
    train = manifest.stats.get("train", {})
    shown = manifest.columns if len(manifest.columns) <= 40 else manifest.columns[:20]
    for column in shown:
        st = train.get(column["name"], {})
        lines.append(
            f"{column['name']:<16}{column['role']:<11}"
            + "".join(f"{st.get(k, float('nan')):>12.4g}" for k in ("min", "max", "mean", "std"))
        )
    if len(shown) < len(manifest.columns):
        lines.append(f"... and {len(manifest.columns) - len(shown)} more columns")
    lines += ["", "sources:"] + [
        f"  {s['path']}  {s['bytes']:,} bytes  {_checksum(s)}" for s in manifest.sources
    ]
    return "\n".join(lines)


def _checksum(source: dict) -> str:
    """``blake3 <first 16 hex digits>…`` (format 1 datasets recorded SHA-256)."""
    algorithm = "blake3" if "blake3" in source else "sha256"
    return f"{algorithm} {source[algorithm][:16]}…"


def verify(folder: str | Path) -> str:
    """Check every shard's existence, size, row count and SHA-256 against the manifest.

    Returns:
        A one-line summary when everything matches.

    Raises:
        DataError: naming the first shard that does not match and how.
    """
    folder = Path(folder)
    manifest = Manifest.read(folder)
    for shard in manifest.shards:
        path = folder / shard.path
        if not path.is_file():
            raise DataError(f"{folder}: shard {shard.path} is missing")
        if path.stat().st_size != shard.bytes:
            raise DataError(
                f"{folder}: shard {shard.path} has {path.stat().st_size} bytes, "
                f"manifest says {shard.bytes}"
            )
        if sha256_file(path) != shard.sha256:
            raise DataError(f"{folder}: shard {shard.path} checksum differs from the manifest")
        rows = shard_rows(path)
        if rows != shard.rows:
            raise DataError(
                f"{folder}: shard {shard.path} has {rows} rows, manifest says {shard.rows}"
            )
    for split, counts in manifest.splits.items():
        listed = sum(s.rows for s in manifest.shards_of(split))
        if listed != sum(counts.values()):
            raise DataError(
                f"{folder}: {split} rows in shards ({listed}) differ from the split counts"
            )
    total = sum(s.rows for s in manifest.shards)
    return f"{folder}: OK, {len(manifest.shards)} shards, {total:,} rows, checksums match"
