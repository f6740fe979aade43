"""Downloading against a local HTTP server on 127.0.0.1 (Range support, truncation, bad md5, hostile tars)."""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from minisnn import data as D

from .synthetic import write_cifar10


class Server:
    """Serves `files[path] = bytes`, honours `Range: bytes=N-`, and can cut responses short."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: list[int] = []     # per request: send only this many body bytes, then close
        self.ignore_range = False
        self.requests: list[str | None] = []  # the Range header of each request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = server.files.get(self.path)
                rng = self.headers.get("Range")
                server.requests.append(rng)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and not server.ignore_range:
                    start = int(rng.split("=")[1].rstrip("-"))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.truncate:
                    payload = payload[: server.truncate.pop(0)]
                    self.close_connection = True
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()
    s.thread.join()


@pytest.fixture
def archive(tmp_path_factory) -> bytes:
    """A small cifar-10-python.tar.gz with synthetic batches in the official layout."""
    src = tmp_path_factory.mktemp("src")
    write_cifar10(src, per_batch=20, test=10)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return buf.getvalue()


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def test_official_addresses():
    assert D.ARCHIVES["cifar10"].url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert D.ARCHIVES["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert D.ARCHIVES["cifar100"].url == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert D.ARCHIVES["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"


def test_fetch_whole_file(server, tmp_path):
    blob = np.random.default_rng(0).bytes(300_000)
    server.files["/f.bin"] = blob
    out = D.fetch(server.url("/f.bin"), tmp_path / "f.bin", md5(blob), chunk_size=4096)
    assert out.read_bytes() == blob and not (tmp_path / "f.bin.part").exists()
    assert server.requests == [None]
    D.fetch(server.url("/f.bin"), out, md5(blob))  # already there and verified: no request
    assert len(server.requests) == 1


def test_resume_partial_file_with_range(server, tmp_path):
    blob = np.random.default_rng(1).bytes(200_000)
    server.files["/f.bin"] = blob
    (tmp_path / "f.bin.part").write_bytes(blob[:123_456])
    out = D.fetch(server.url("/f.bin"), tmp_path / "f.bin", md5(blob))
    assert out.read_bytes() == blob
    assert server.requests == ["bytes=123456-"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    blob = np.random.default_rng(2).bytes(50_000)
    server.files["/f.bin"] = blob
    server.ignore_range = True
    (tmp_path / "f.bin.part").write_bytes(blob[:1000])
    assert D.fetch(server.url("/f.bin"), tmp_path / "f.bin", md5(blob)).read_bytes() == blob


def test_complete_part_file_gets_416_and_is_accepted(server, tmp_path):
    blob = np.random.default_rng(3).bytes(10_000)
    server.files["/f.bin"] = blob
    (tmp_path / "f.bin.part").write_bytes(blob)
    assert D.fetch(server.url("/f.bin"), tmp_path / "f.bin", md5(blob)).read_bytes() == blob


def test_truncated_transfer_is_resumed(server, tmp_path):
    blob = np.random.default_rng(4).bytes(400_000)
    server.files["/f.bin"] = blob
    server.truncate = [150_000, 100_000]  # two cut-short responses, then a full one
    out = D.fetch(server.url("/f.bin"), tmp_path / "f.bin", md5(blob), retries=3, chunk_size=8192)
    assert out.read_bytes() == blob
    assert server.requests == [None, "bytes=150000-", "bytes=250000-"]


def test_truncated_transfer_without_retries_left_errors_and_keeps_part(server, tmp_path):
    blob = np.random.default_rng(5).bytes(100_000)
    server.files["/f.bin"] = blob
    server.truncate = [30_000, 30_000]
    with pytest.raises(D.DownloadError, match="stopped at 60,000 of 100,000 bytes.*run again to resume"):
        D.fetch(server.url("/f.bin"), tmp_path / "f.bin", md5(blob), retries=1)
    assert (tmp_path / "f.bin.part").read_bytes() == blob[:60_000]
    assert not (tmp_path / "f.bin").exists()
    assert D.fetch(server.url("/f.bin"), tmp_path / "f.bin", md5(blob)).read_bytes() == blob  # next run resumes


def test_wrong_md5_removes_the_partial_file(server, tmp_path):
    server.files["/f.bin"] = b"not the archive you want" * 100
    with pytest.raises(D.ChecksumError, match="expected 0123456789abcdef0123456789abcdef; the partial file was deleted"):
        D.fetch(server.url("/f.bin"), tmp_path / "f.bin", "0123456789abcdef0123456789abcdef")
    assert not (tmp_path / "f.bin.part").exists() and not (tmp_path / "f.bin").exists()


def test_http_error_is_reported(server, tmp_path):
    with pytest.raises(D.DownloadError, match="HTTP 404"):
        D.fetch(server.url("/missing.tar.gz"), tmp_path / "x", None)


def test_download_dataset_end_to_end(server, archive, tmp_path, monkeypatch):
    monkeypatch.delenv("MINISNN_DATA_DIR", raising=False)
    server.files["/cifar-10-python.tar.gz"] = archive
    folder = D.download_dataset("cifar10", tmp_path / "data", url=server.url("/cifar-10-python.tar.gz"),
                                md5=md5(archive), progress=False)
    assert folder == tmp_path / "data" / "cifar-10-batches-py"
    assert not (tmp_path / "data" / "cifar-10-python.tar.gz").exists()  # archive removed after extraction
    ds = D.get_datasets(tmp_path / "data", val_size=20)
    assert len(ds.train[1]) == 80 and len(ds.test[1]) == 10
    n = len(server.requests)
    assert D.download_dataset("cifar10", tmp_path / "data", url=server.url("/nothing")) == folder
    assert len(server.requests) == n  # already present: nothing fetched


def test_download_dataset_defaults_to_env_then_cache(server, archive, tmp_path, monkeypatch):
    server.files["/cifar-10-python.tar.gz"] = archive
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MINISNN_DATA_DIR", raising=False)
    got = D.download_dataset(url=server.url("/cifar-10-python.tar.gz"), md5=md5(archive), progress=False)
    assert got == tmp_path / "xdg" / "minisnn" / "cifar-10-batches-py"
    monkeypatch.setenv("MINISNN_DATA_DIR", str(tmp_path / "env"))
    got = D.download_dataset(url=server.url("/cifar-10-python.tar.gz"), md5=md5(archive), progress=False)
    assert got == tmp_path / "env" / "cifar-10-batches-py"


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        ok = tarfile.TarInfo("cifar-10-batches-py/readme.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"hi"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buf.getvalue()


def _member(name: str, kind=tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, link
    return m


@pytest.mark.parametrize("member, pattern", [
    (_member("../evil.txt"), "absolute path or '..'"),
    (_member("cifar-10-batches-py/../../evil.txt"), "absolute path or '..'"),
    (_member("/tmp/evil.txt"), "absolute path or '..'"),
    (_member("cifar-10-batches-py/link", tarfile.SYMTYPE, "/etc/passwd"), "refusing link member"),
    (_member("cifar-10-batches-py/hard", tarfile.LNKTYPE, "../../etc/passwd"), "refusing link member"),
    (_member("cifar-10-batches-py/dev", tarfile.CHRTYPE), "refusing special member"),
    (_member("cifar-10-batches-py/fifo", tarfile.FIFOTYPE), "refusing special member"),
])
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, member, pattern):
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(_tar_with(member, b"pwned"))
    target = tmp_path / "out"
    with pytest.raises(D.UnsafeArchiveError, match=pattern):
        D.safe_extract(path, target)
    assert list(target.rglob("*")) == []  # not even the harmless member was extracted
    assert not (tmp_path / "evil.txt").exists()


def test_traversal_archive_from_the_server_is_refused(server, tmp_path):
    bad = _tar_with(_member("../escaped.txt"), b"pwned")
    server.files["/cifar-10-python.tar.gz"] = bad
    with pytest.raises(D.UnsafeArchiveError, match="'../escaped.txt'"):
        D.download_dataset("cifar10", tmp_path / "data", url=server.url("/cifar-10-python.tar.gz"),
                           md5=md5(bad), progress=False)
    assert not (tmp_path / "escaped.txt").exists()


def test_symlinked_folder_cannot_redirect_extraction(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "cifar-10-batches-py").symlink_to(outside, target_is_directory=True)
    path = tmp_path / "a.tar.gz"
    path.write_bytes(_tar_with(_member("cifar-10-batches-py/x.txt"), b"data"))
    with pytest.raises(D.UnsafeArchiveError, match="would land outside"):
        D.safe_extract(path, target)
    assert list(outside.iterdir()) == []


def test_no_network_says_nothing_was_downloaded_and_shows_no_empty_bar(tmp_path, capsys):
    """A refused connection (as without network): no progress bar, no claim about a .part file."""
    with socket.socket() as s:                     # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(D.DownloadError, match="nothing was downloaded") as err:
        D.fetch(f"http://127.0.0.1:{port}/cifar-10-python.tar.gz", tmp_path / "a.tar.gz", retries=1, progress=True)
    assert "bytes kept" not in str(err.value) and not (tmp_path / "a.tar.gz.part").exists()
    assert capsys.readouterr().err == ""
