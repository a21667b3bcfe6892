"""ADD: local archives detected by content and extracted; URLs downloaded with checksums."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import os
import stat
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from polybuild.fileops import FileOpError, ResolvedOwner, add_url, copy_files, is_archive
from tests.fileops.trees import describe, make_tree


def tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in [
            ("top/a.txt", b"A", 0o640),
            ("top/.wh.b", b"not a whiteout", 0o600),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = (
                len(data),
                mode,
                33,
                44,
                1_500_000_000,
            )
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("top/link")
        link.type, link.linkname = tarfile.SYMTYPE, "a.txt"
        tar.addfile(link)
        hard = tarfile.TarInfo("top/hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "top/a.txt"
        tar.addfile(hard)
    return buf.getvalue()


COMPRESSORS = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.root
@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_add_extracts_local_archives(tmp_path: Path, kind: str) -> None:
    src = make_tree(tmp_path / "src", {})
    (src / "archive.bin").write_bytes(COMPRESSORS[kind](tar_bytes()))  # the name says nothing
    dest = make_tree(tmp_path / "dest", {"out/.wh.b": "kept"})
    result = copy_files(src, dest, ["archive.bin"], "/out", is_add=True, chmod="777")
    assert result.unpacked == ("archive.bin",)
    tree = describe(dest / "out")
    assert tree["top/a.txt"] == "f:A" and tree["top/link"] == "l:a.txt"
    assert tree["top/.wh.b"] == "f:not a whiteout"  # plain tar: no whiteout semantics
    assert tree[".wh.b"] == "f:kept"
    st = os.stat(dest / "out" / "top" / "a.txt")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (33, 44, 0o640)  # no --chmod
    assert st.st_mtime == 1_500_000_000 and st.st_nlink == 2


@pytest.mark.root
def test_add_archive_with_chown_and_unpack_false(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {})
    (src / "a.tgz").write_bytes(gzip.compress(tar_bytes()))
    dest = make_tree(tmp_path / "dest", {})
    copy_files(src, dest, ["a.tgz"], "/x/", is_add=True, chown=ResolvedOwner(7, 8))
    assert os.stat(dest / "x" / "top" / "a.txt").st_uid == 7
    copy_files(src, dest, ["a.tgz"], "/y/", is_add=True, unpack=False)
    assert (dest / "y" / "a.tgz").is_file()
    copy_files(src, dest, ["a.tgz"], "/z/")  # COPY never extracts
    assert (dest / "z" / "a.tgz").is_file()


def test_non_tar_is_copied_not_extracted(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"notes.tar.gz": "just text"})
    (src / "fake.gz").write_bytes(gzip.compress(b"gzip but not a tar" * 40))
    dest = make_tree(tmp_path / "dest", {})
    result = copy_files(src, dest, ["notes.tar.gz", "fake.gz"], "/d/", is_add=True)
    assert result.unpacked == ()
    assert (dest / "d" / "notes.tar.gz").read_text() == "just text"
    assert not is_archive(str(src / "fake.gz"))


def test_archive_names_cannot_leave_the_destination(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    src = make_tree(tmp_path / "src", {})
    (src / "evil.tar").write_bytes(buf.getvalue())
    dest = make_tree(tmp_path / "dest", {})
    with pytest.raises(FileOpError, match="outside extraction root"):
        copy_files(src, dest, ["evil.tar"], "/x/", is_add=True)
    assert not (tmp_path / "escape").exists()


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b"downloaded content"

    def do_GET(self) -> None:
        if self.path.startswith("/missing"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.root
def test_add_url_into_directory(tmp_path: Path, server: str) -> None:
    good = "sha256:" + hashlib.sha256(_Handler.body).hexdigest()
    add_url(f"{server}/files/tool.bin?x=1", tmp_path, "/opt/", checksum=good)
    path = tmp_path / "opt" / "tool.bin"
    st = os.stat(path)
    assert path.read_bytes() == _Handler.body
    assert stat.S_IMODE(st.st_mode) == 0o600 and (st.st_uid, st.st_gid) == (0, 0)
    assert st.st_mtime == 1445412480  # Last-Modified


@pytest.mark.root
def test_add_url_to_file_with_chmod(tmp_path: Path, server: str) -> None:
    add_url(f"{server}/x", tmp_path, "/usr/bin/x", chmod="755", chown=ResolvedOwner(3, 4))
    st = os.stat(tmp_path / "usr" / "bin" / "x")
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 3


def test_add_url_checksum_mismatch(tmp_path: Path, server: str) -> None:
    wrong = "sha256:" + "0" * 64
    with pytest.raises(FileOpError) as info:
        add_url(f"{server}/f", tmp_path, "/f", checksum=wrong, instruction="ADD f /f")
    text = str(info.value)
    assert wrong in text and hashlib.sha256(_Handler.body).hexdigest() in text
    assert not (tmp_path / "f").exists()


def test_add_url_http_error(tmp_path: Path, server: str) -> None:
    with pytest.raises(FileOpError, match="404"):
        add_url(f"{server}/missing", tmp_path, "/f")
