"""Download public data sets with resume, checksums and atomic completion.

Each file is downloaded to ``<dest>/<name>.part``; an interrupted download is
resumed with an HTTP ``Range`` request on the next call (a server that ignores
the range restarts it). A complete download is checked against the md5 of its
registry record when one is known, its sha256 is written to ``<name>.sha256``
(``sha256sum -c`` format), and only then is it renamed to ``<name>``, so a file
under its final name is always complete. Files already present are skipped.

The registry lists the LHC Olympics 2020 R&D files on Zenodo: the raw file
(record 2629073), the features file (4536377) and the extra signal-region
background ``events_anomalydetection_qcd_extra_inneronly_features.h5`` (5759087,
the record CATHODE's data preparation downloads it from). Their md5 sums are not
recorded here (``None``): fill them in from the Zenodo record pages to have
downloads verified. ``base_url`` fetches ``<base_url>/<name>`` instead, for
mirrors (a flat folder of the files) and tests.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fedhex_hpc.data.sources.lhco import EXTRA_FILE_NAME, FEATURES_FILE_NAME, RAW_FILE_NAME
from fedhex_hpc.errors import DataError

__all__ = ["DATASETS", "RemoteFile", "fetch", "zenodo_file"]

_BLOCK_BYTES = 1 << 20
_TIMEOUT_SECONDS = 60
_PROGRESS_STEP = 0.05
_UNKNOWN_SIZE_STEP_BYTES = 256 << 20


@dataclass(frozen=True)
class RemoteFile:
    """A downloadable file of a data set."""

    name: str
    url: str
    md5: str | None = None


def zenodo_file(record: int, name: str, md5: str | None = None) -> RemoteFile:
    """A file of a Zenodo record.

    Args:
        record: The Zenodo record id.
        name: The file name in the record.
        md5: The md5 Zenodo lists for the file, if known.
    """
    return RemoteFile(name, f"https://zenodo.org/records/{record}/files/{name}?download=1", md5)


#: Named data sets and their files.
DATASETS: dict[str, list[RemoteFile]] = {
    "lhco": [
        zenodo_file(2629073, RAW_FILE_NAME),
        zenodo_file(4536377, FEATURES_FILE_NAME),
        zenodo_file(5759087, EXTRA_FILE_NAME),
    ],
}


def fetch(
    name: str,
    dest: str | Path,
    base_url: str | None = None,
    files: list[str] | None = None,
) -> list[Path]:
    """Download the files of a registered data set into a folder.

    Args:
        name: A key of :data:`DATASETS`, e.g. ``"lhco"``.
        dest: The folder to download into (created if needed).
        base_url: Fetch ``<base_url>/<file name>`` instead of the registered URLs.
        files: Download only these file names (default: all of the data set).

    Returns:
        The paths of the complete files, in registry (or ``files``) order.

    Raises:
        DataError: Unknown data set or file, a network or HTTP error, an
            interrupted download (run again to resume) or an md5 mismatch.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return [_fetch_file(remote, dest, base_url) for remote in _select(name, files)]


def _select(name: str, files: list[str] | None) -> list[RemoteFile]:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    by_name = {remote.name: remote for remote in DATASETS[name]}
    if files is None:
        return list(by_name.values())
    unknown = [file for file in files if file not in by_name]
    if unknown:
        raise DataError(
            f"data set {name!r} has no file {', '.join(unknown)}; files: {', '.join(by_name)}"
        )
    return [by_name[file] for file in files]


def _fetch_file(remote: RemoteFile, dest: Path, base_url: str | None) -> Path:
    target = dest / remote.name
    if target.is_file():
        _say(f"{target.name}: already present")
        return target
    url = remote.url
    if base_url is not None:
        url = f"{base_url.rstrip('/')}/{urllib.parse.quote(remote.name)}"
    part = target.with_name(f"{target.name}.part")
    _download(url, part)
    md5, sha256 = _digests(part)
    if remote.md5 is not None and md5 != remote.md5.lower():
        corrupt = target.with_name(f"{target.name}.corrupt")
        os.replace(part, corrupt)
        raise DataError(
            f"{target}: md5 expected {remote.md5}, found {md5}; download moved to {corrupt.name}"
        )
    target.with_name(f"{target.name}.sha256").write_text(f"{sha256}  {target.name}\n")
    os.replace(part, target)
    return target


def _download(url: str, part: Path) -> None:
    """Download ``url`` into ``part``, appending to what a previous attempt left."""
    offset = part.stat().st_size if part.is_file() else 0
    response = _open_url(url, offset)
    if response is None:  # the server says the part already holds every byte
        return
    with response:
        resumed = response.status == 206
        if resumed and _range_start(response.headers.get("Content-Range")) != offset:
            raise DataError(f"cannot resume {url}: the server sent another byte range")
        start = offset if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        _say(f"{part.stem}: downloading {url}" + (f" from byte {start}" if resumed else ""))
        with part.open("ab" if resumed else "wb") as out:
            size = _copy(response, out, start, _Progress(part.stem, total))
    if total is not None and size < total:
        raise DataError(
            f"download of {url} interrupted at {size} of {total} bytes; run again to resume"
        )


def _open_url(url: str, offset: int) -> http.client.HTTPResponse | None:
    """The response to a GET of ``url`` from byte ``offset``; None if nothing is left."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        return urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_SECONDS
        )
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            if _range_total(exc.headers.get("Content-Range")) == offset:
                return None
            return _open_url(url, 0)  # the partial download is longer than the file
        raise DataError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None


def _copy(response: http.client.HTTPResponse, out: BinaryIO, size: int, progress: _Progress) -> int:
    """Append the response body to ``out``, which already holds ``size`` bytes."""
    try:
        while block := response.read(_BLOCK_BYTES):
            out.write(block)
            size += len(block)
            progress.update(size)
    except (OSError, http.client.HTTPException) as exc:
        raise DataError(
            f"download to {out.name} interrupted at {size} bytes ({exc}); run again to resume"
        ) from None
    progress.finish(size)
    return size


def _range_start(content_range: str | None) -> int | None:
    """First byte of ``bytes <first>-<last>/<total>``."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _range_total(content_range: str | None) -> int | None:
    """Total size of ``bytes */<total>`` (or of any ``Content-Range``)."""
    try:
        return int(content_range.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None


def _digests(path: Path) -> tuple[str, str]:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK_BYTES):
            md5.update(block)
            sha256.update(block)
    return md5.hexdigest(), sha256.hexdigest()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Progress:
    """Progress lines every 5% (every 256 MB when the size is unknown).

    On a terminal the line is rewritten in place; otherwise (batch logs) each
    report is a line of its own.
    """

    def __init__(self, label: str, total: int | None) -> None:
        self.label = label
        self.total = total
        self.step = max(1, int(total * _PROGRESS_STEP)) if total else _UNKNOWN_SIZE_STEP_BYTES
        self.next = self.step
        self.reported = -1
        self.tty = sys.stderr.isatty()

    def update(self, size: int) -> None:
        if size >= self.next:
            self._report(size)
            self.next = (size // self.step + 1) * self.step

    def finish(self, size: int) -> None:
        if size != self.reported:
            self._report(size)
        if self.tty:
            sys.stderr.write("\n")

    def _report(self, size: int) -> None:
        self.reported = size
        done = f"{size / 1e6:.1f} MB"
        if self.total:
            done = f"{100 * size / self.total:3.0f}% ({done} of {self.total / 1e6:.1f} MB)"
        if self.tty:
            sys.stderr.write(f"\r{self.label}: {done}")
            sys.stderr.flush()
        else:
            _say(f"{self.label}: {done}")
