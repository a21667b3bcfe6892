"""Deterministic layer tars: byte-identical output, order, clamped mtimes, links and metadata."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from polybuild.layers import (
    Change,
    ChangeKind,
    Compression,
    LayerFormat,
    LayerWriteError,
    compute_changes,
    directory_layer,
    write_directory_tar,
)
from tests.conftest import require_root


def _tree(root: Path) -> Path:
    """A small tree with every kind of entry a layer holds."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("polybuild\n")
    (root / "usr" / "bin").mkdir(parents=True)
    tool = root / "usr" / "bin" / "tool"
    tool.write_bytes(b"\x7fELF" + bytes(range(256)) * 64)
    os.chmod(tool, 0o4755)
    os.link(tool, root / "usr" / "bin" / "tool-alias")
    os.link(tool, root / "a-first-link")
    os.symlink("../etc/hostname", root / "usr" / "hostname-link")
    (root / "empty").mkdir(mode=0o700)
    os.mkfifo(root / "usr" / "fifo")
    os.setxattr(tool, "user.note", b"\xff\x00binary")
    os.setxattr(root / "etc", "user.dir", b"yes")
    return root


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name for m in tar]


@pytest.mark.parametrize("compression", list(Compression))
def test_same_tree_gives_byte_identical_layers(tmp_path: Path, compression: Compression) -> None:
    tree = _tree(tmp_path / "tree")
    first, second = io.BytesIO(), io.BytesIO()
    d1 = directory_layer(
        tree, first, LayerFormat(compression=compression, source_date_epoch=1_700_000_000)
    )
    d2 = directory_layer(
        tree, second, LayerFormat(compression=compression, source_date_epoch=1_700_000_000)
    )
    assert first.getvalue() == second.getvalue()
    assert d1 == d2
    assert d1.descriptor.size == len(first.getvalue())


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_copied_tree_gives_same_digest(tmp_path: Path, compression: Compression) -> None:
    # A copy has other inode numbers and lives elsewhere; only content and metadata count.
    tree = _tree(tmp_path / "tree")
    subprocess.run(["cp", "-a", str(tree), str(tmp_path / "copy")], check=True)
    d1 = directory_layer(
        tree, io.BytesIO(), LayerFormat(compression=compression, source_date_epoch=10)
    )
    d2 = directory_layer(
        tmp_path / "copy", io.BytesIO(), LayerFormat(compression=compression, source_date_epoch=10)
    )
    assert d1 == d2


def test_entries_are_sorted_depth_first_parents_before_children(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    (tree / "etc-b").write_text("sorts after etc/ as a sibling, before usr")
    out = io.BytesIO()
    write_directory_tar(tree, out)
    assert _names(out.getvalue()) == [
        "a-first-link",
        "empty",
        "etc",
        "etc/hostname",
        "etc-b",
        "usr",
        "usr/bin",
        "usr/bin/tool",
        "usr/bin/tool-alias",
        "usr/fifo",
        "usr/hostname-link",
    ]


def test_source_date_epoch_clamps_only_newer_mtimes(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("old")
    (tmp_path / "new").write_text("new")
    os.utime(tmp_path / "old", (1000, 1000))
    os.utime(tmp_path / "new", (5_000_000_000, 5_000_000_000))
    out = io.BytesIO()
    write_directory_tar(tmp_path, out, source_date_epoch=2000)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        mtimes = {m.name: m.mtime for m in tar}
    assert mtimes == {"new": 2000, "old": 1000}
    unclamped = io.BytesIO()
    write_directory_tar(tmp_path, unclamped)
    with tarfile.open(fileobj=io.BytesIO(unclamped.getvalue())) as tar:
        assert {m.name: m.mtime for m in tar}["new"] == 5_000_000_000


def test_hardlinks_become_link_entries_to_the_first_name(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    out = io.BytesIO()
    write_directory_tar(tree, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = {m.name: m for m in tar}
    first = members["a-first-link"]
    assert first.isreg() and first.size == 64 * 256 + 4
    for name in ("usr/bin/tool", "usr/bin/tool-alias"):
        assert members[name].islnk() and members[name].linkname == "a-first-link"
        assert members[name].size == 0


@pytest.mark.root
def test_metadata_is_kept_and_host_names_are_not(tmp_path: Path) -> None:
    require_root()
    tree = _tree(tmp_path / "tree")
    os.chown(tree / "etc" / "hostname", 1234, 5678)
    cap = bytes.fromhex("0100000200200000000000000000000000000000")
    os.setxattr(tree / "etc" / "hostname", "security.capability", cap)
    os.mknod(tree / "usr" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.setxattr(tree / "etc", "trusted.overlay.origin", b"host-specific")
    out = io.BytesIO()
    write_directory_tar(tree, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = {m.name: m for m in tar}
    hostname = members["etc/hostname"]
    assert (hostname.uid, hostname.gid, hostname.uname, hostname.gname) == (1234, 5678, "", "")
    assert (
        hostname.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape")
        == cap
    )
    assert members["a-first-link"].mode == 0o4755
    assert members["empty"].mode == 0o700
    null = members["usr/null"]
    assert null.ischr() and (null.devmajor, null.devminor) == (1, 3)
    assert members["usr/fifo"].isfifo()
    assert members["usr/hostname-link"].linkname == "../etc/hostname"
    assert members["etc"].pax_headers == {"SCHILY.xattr.user.dir": "yes"}


def test_sockets_are_skipped(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        (tmp_path / "file").write_text("x")
        out = io.BytesIO()
        write_directory_tar(tmp_path, out)
    finally:
        sock.close()
    assert _names(out.getvalue()) == ["file"]


def test_long_and_non_utf8_names_survive(tmp_path: Path) -> None:
    long_dir = tmp_path / ("d" * 120)
    long_dir.mkdir()
    (long_dir / ("f" * 130)).write_text("long")
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    with open(raw, "wb") as f:
        f.write(b"latin-1 name")
    out = io.BytesIO()
    write_directory_tar(tmp_path, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), errors="surrogateescape") as tar:
        names = [os.fsencode(m.name) for m in tar]
    assert names == [b"caf\xe9", b"d" * 120, b"d" * 120 + b"/" + b"f" * 130]


def test_gnu_tar_reads_the_layer_without_complaint(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    (tmp_path / "layer.tar").write_bytes(b"")
    with open(tmp_path / "layer.tar", "wb") as f:
        write_directory_tar(tree, f)
    listing = subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "-tvf", str(tmp_path / "layer.tar")],
        check=True,
        capture_output=True,
        text=True,
    )
    assert listing.stderr == ""
    assert "usr/bin/tool link to a-first-link" in listing.stdout


def test_whiteout_like_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / ".wh.sneaky").write_text("would read as a deletion")
    with pytest.raises(LayerWriteError, match="whiteout"):
        write_directory_tar(tmp_path, io.BytesIO())


def test_compute_changes_lists_additions_modifications_and_deletions(tmp_path: Path) -> None:
    lower = _tree(tmp_path / "lower")
    (lower / "gone-dir" / "sub").mkdir(parents=True)
    (lower / "gone-dir" / "sub" / "f").write_text("x")
    (lower / "dir-to-file").mkdir()
    (lower / "dir-to-file" / "child").write_text("x")
    new = tmp_path / "new"
    subprocess.run(["cp", "-a", str(lower), str(new)], check=True)
    (new / "etc" / "hostname").write_text("changed\n")
    (new / "etc" / "added").write_text("added\n")
    subprocess.run(["rm", "-rf", str(new / "gone-dir"), str(new / "dir-to-file")], check=True)
    (new / "dir-to-file").write_text("now a file")
    (new / "newdir" / "deep").mkdir(parents=True)
    (new / "newdir" / "deep" / "f").write_text("x")
    os.unlink(new / "usr" / "fifo")
    assert compute_changes(lower, new) == [
        Change(ChangeKind.MODIFY, "dir-to-file"),
        Change(ChangeKind.MODIFY, "etc"),
        Change(ChangeKind.ADD, "etc/added"),
        Change(ChangeKind.MODIFY, "etc/hostname"),
        Change(ChangeKind.DELETE, "gone-dir"),
        Change(ChangeKind.ADD, "newdir"),
        Change(ChangeKind.ADD, "newdir/deep"),
        Change(ChangeKind.ADD, "newdir/deep/f"),
        Change(ChangeKind.MODIFY, "usr"),
        Change(ChangeKind.DELETE, "usr/fifo"),
    ]
