"""Downloads from a local HTTP server: resume with Range, checksums, atomic files."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fedhex_hpc.data import fetch as fetch_module
from fedhex_hpc.data.fetch import RemoteFile, fetch
from fedhex_hpc.data.sources.lhco import FEATURES_FILE_NAME
from fedhex_hpc.data.synthetic.lhco import write_features
from fedhex_hpc.errors import DataError


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` by name; can cut the next response short or ignore ranges."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.files = files
        self.ranges: list[str | None] = []
        self.cut_after: int | None = None
        self.honour_ranges = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class RangeHandler(BaseHTTPRequestHandler):
    """GET with ``Range: bytes=<start>-`` support (206, or 416 past the end)."""

    server: FileServer

    def do_GET(self) -> None:
        data = self.server.files.get(self.path.lstrip("/").split("?")[0])
        if data is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        self.server.ranges.append(requested)
        start = int(requested.split("=")[1].split("-")[0]) if requested else 0
        if not self.server.honour_ranges:
            start = 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.server.cut_after is not None:
            body, self.server.cut_after = body[: self.server.cut_after], None
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small generated features file, as served bytes."""
    path = write_features(tmp_path_factory.mktemp("served") / FEATURES_FILE_NAME, 200, seed=4)
    return path.read_bytes()


@pytest.fixture
def server(payload: bytes) -> Iterator[FileServer]:
    httpd = FileServer({FEATURES_FILE_NAME: payload, "other.bin": b"x" * 1000})
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def fetch_features(server: FileServer, dest: Path) -> Path:
    (path,) = fetch("lhco", dest, base_url=server.url, files=[FEATURES_FILE_NAME])
    return path


def test_fetch_writes_file_and_sha256_sidecar(
    server: FileServer, payload: bytes, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = fetch_features(server, tmp_path / "data")
    assert path == tmp_path / "data" / FEATURES_FILE_NAME
    assert path.read_bytes() == payload
    sidecar = path.with_name(f"{FEATURES_FILE_NAME}.sha256").read_text()
    assert sidecar == f"{hashlib.sha256(payload).hexdigest()}  {FEATURES_FILE_NAME}\n"
    assert not path.with_name(f"{FEATURES_FILE_NAME}.part").exists()
    assert server.ranges == [None]
    assert "100% (" in capsys.readouterr().err
    assert fetch_features(server, tmp_path / "data") == path
    assert server.ranges == [None]


def test_interrupted_download_resumes_with_range(
    server: FileServer, payload: bytes, tmp_path: Path
) -> None:
    server.cut_after = 5000
    with pytest.raises(DataError, match="interrupted at 5000 of") as excinfo:
        fetch_features(server, tmp_path)
    assert "\n" not in str(excinfo.value)
    assert not (tmp_path / FEATURES_FILE_NAME).exists()
    assert (tmp_path / f"{FEATURES_FILE_NAME}.part").stat().st_size == 5000
    assert fetch_features(server, tmp_path).read_bytes() == payload
    assert server.ranges == [None, "bytes=5000-"]


def test_server_ignoring_range_restarts(server: FileServer, payload: bytes, tmp_path: Path) -> None:
    (tmp_path / f"{FEATURES_FILE_NAME}.part").write_bytes(b"stale bytes")
    server.honour_ranges = False
    assert fetch_features(server, tmp_path).read_bytes() == payload
    assert server.ranges == ["bytes=11-"]


def test_complete_part_is_finished_without_download(
    server: FileServer, payload: bytes, tmp_path: Path
) -> None:
    (tmp_path / f"{FEATURES_FILE_NAME}.part").write_bytes(payload)
    assert fetch_features(server, tmp_path).read_bytes() == payload
    assert server.ranges == [f"bytes={len(payload)}-"]


@pytest.mark.parametrize("correct", [True, False])
def test_md5_is_verified(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, correct: bool
) -> None:
    md5 = hashlib.md5(b"x" * 1000).hexdigest() if correct else "0" * 32
    remote = RemoteFile("other.bin", "http://unused.invalid/other.bin", md5)
    monkeypatch.setitem(fetch_module.DATASETS, "test", [remote])
    if correct:
        assert fetch("test", tmp_path, base_url=server.url)[0].read_bytes() == b"x" * 1000
        return
    with pytest.raises(DataError, match=r"md5 expected 0{32}, found") as excinfo:
        fetch("test", tmp_path, base_url=server.url)
    assert "\n" not in str(excinfo.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.bin.corrupt"]


def test_user_mistakes_are_data_errors(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data set 'miniboone'; known: lhco"):
        fetch("miniboone", tmp_path)
    with pytest.raises(DataError, match=r"has no file nope\.h5"):
        fetch("lhco", tmp_path, files=["nope.h5"])
    with pytest.raises(DataError, match="HTTP 404"):
        fetch("lhco", tmp_path, base_url=server.url, files=["events_anomalydetection.h5"])


def test_registry_points_at_zenodo() -> None:
    urls = [remote.url for remote in fetch_module.DATASETS["lhco"]]
    assert urls == [
        "https://zenodo.org/records/2629073/files/events_anomalydetection.h5?download=1",
        "https://zenodo.org/records/4536377/files/events_anomalydetection_v2.features.h5?download=1",
        "https://zenodo.org/records/5759087/files/"
        "events_anomalydetection_qcd_extra_inneronly_features.h5?download=1",
    ]
