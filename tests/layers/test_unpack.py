"""Unpacking: exact round trips, whiteout rules in merged and overlay modes, diff-id checks."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from polybuild.errors import DigestMismatchError
from polybuild.layers import (
    Compression,
    LayerFormat,
    UnpackMode,
    changes_layer,
    directory_layer,
    unpack_layer,
)
from tests.conftest import require_root
from tests.layers.trees import hardlink_groups, make_tar, member, snapshot


def _rich_tree(root: Path) -> Path:
    """Every kind of entry and metadata a root filesystem has, with fixed times."""
    for d, mode in (("bin", 0o755), ("tmp", 0o1777), ("shared", 0o2775), ("ro", 0o555)):
        (root / d).mkdir(parents=True)
        os.chmod(root / d, mode)
    (root / "bin" / "sh").write_bytes(b"\x7fELF" + os.urandom(70_000))
    os.chmod(root / "bin" / "sh", 0o755)
    os.link(root / "bin" / "sh", root / "bin" / "ash")
    (root / "bin" / "su").write_bytes(b"setuid")
    os.chmod(root / "bin" / "su", 0o4755)
    os.setxattr(
        root / "bin" / "su",
        "security.capability",
        bytes.fromhex("0100000200200000000000000000000000000000"),
    )
    (root / "shared" / "owned").write_text("by someone else")
    os.chown(root / "shared" / "owned", 1000, 1001)
    os.chown(root / "shared", 1000, 1001)
    os.setxattr(root / "shared" / "owned", "user.label", b"\x00\xffbinary")
    (root / "ro" / "inside").write_text("in a read-only directory")
    os.symlink("/bin/sh", root / "abs-link")
    os.symlink("../nowhere", root / "bin" / "dangling")
    os.lchown(root / "abs-link", 7, 8)
    os.mkfifo(root / "tmp" / "fifo", 0o620)
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(
                os.path.join(dirpath, name), (1_600_000_000, 1_600_000_000), follow_symlinks=False
            )
    return root


@pytest.mark.root
def test_round_trip_keeps_modes_owners_xattrs_links_and_times(tmp_path: Path) -> None:
    require_root()
    source = _rich_tree(tmp_path / "source")
    blob = io.BytesIO()
    desc = directory_layer(source, blob)
    blob.seek(0)
    target = tmp_path / "target"
    target.mkdir()
    result = unpack_layer(blob, target, trusted=True, expected_diff_id=str(desc.diff_id))
    assert result.skipped == ()
    assert result.compression is Compression.GZIP
    assert snapshot(target) == snapshot(source)
    assert hardlink_groups(target) == hardlink_groups(source) == {frozenset({"bin/sh", "bin/ash"})}
    assert os.lstat(target / "abs-link").st_uid == 7


def test_a_wrong_diff_id_is_reported(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    blob = io.BytesIO()
    directory_layer(tmp_path / "src", blob)
    blob.seek(0)
    (tmp_path / "dst").mkdir()
    with pytest.raises(DigestMismatchError):
        unpack_layer(blob, tmp_path / "dst", expected_diff_id="sha256:" + "0" * 64)


def _lower(root: Path) -> Path:
    for path in ("a", "b/x", "b/y", "c/p", "c/sub/q", "d/r", "keepdir/k"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)
    return root


def test_merged_mode_applies_whiteouts_only_to_lower_layers(tmp_path: Path) -> None:
    root = _lower(tmp_path / "root")
    layer = make_tar(
        (member(".wh.a"), b""),
        (member("b/.wh.x"), b""),
        # Another tool may put the opaque marker after the directory's new children.
        (member("c", tarfile.DIRTYPE), None),
        (member("c/new"), b"new"),
        (member("c/sub", tarfile.DIRTYPE), None),
        (member("c/sub/fresh"), b"fresh"),
        (member("c/.wh..wh..opq"), b""),
        # A whiteout never hides an entry of its own layer.
        (member("e"), b"same layer"),
        (member(".wh.e"), b""),
        (member(".wh.missing"), b""),
        (member(".wh.keepdir"), b""),
    )
    unpack_layer(layer, root)
    assert sorted(snapshot(root)) == [
        "b",
        "b/y",
        "c",
        "c/new",
        "c/sub",
        "c/sub/fresh",
        "d",
        "d/r",
        "e",
    ]


def test_entries_replace_other_types(tmp_path: Path) -> None:
    root = _lower(tmp_path / "root")
    os.symlink("b", root / "link")
    layer = make_tar(
        (member("b"), b"file replaces a directory"),
        (member("a", tarfile.DIRTYPE), None),
        (member("a/inside"), b"directory replaces a file"),
        (member("link", tarfile.DIRTYPE), None),
    )
    unpack_layer(layer, root)
    assert (root / "b").read_bytes() == b"file replaces a directory"
    assert (root / "a" / "inside").read_bytes() == b"directory replaces a file"
    assert stat.S_ISDIR(os.lstat(root / "link").st_mode)


@pytest.mark.root
def test_overlay_mode_turns_whiteouts_into_overlayfs_markers(tmp_path: Path) -> None:
    require_root()
    layer = make_tar(
        (member("gone-file", tarfile.SYMTYPE, linkname="x"), None),
        (member(".wh.gone"), b""),
        (member("dir", tarfile.DIRTYPE), None),
        (member("dir/.wh..wh..opq"), b""),
        (member("dir/new"), b"new"),
        # Deleted then recreated as a directory in one layer: must hide the lower one.
        (member(".wh.again"), b""),
        (member("again", tarfile.DIRTYPE), None),
    )
    lower = tmp_path / "lower"
    lower.mkdir()
    unpack_layer(layer, lower, mode=UnpackMode.OVERLAY, trusted=True)
    gone = os.lstat(lower / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(lower / "dir", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(lower / "again", "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(lower / ".wh.gone")
    assert not os.path.lexists(lower / "dir" / ".wh..wh..opq")


@pytest.mark.root
def test_changes_layer_reproduces_the_new_tree(tmp_path: Path) -> None:
    require_root()
    lower = _rich_tree(tmp_path / "lower")
    new = tmp_path / "new"
    subprocess.run(["cp", "-a", str(lower), str(new)], check=True)
    subprocess.run(["rm", "-rf", str(new / "ro"), str(new / "tmp" / "fifo")], check=True)
    (new / "bin" / "sh").write_bytes(b"replaced shell")
    os.chmod(new / "shared" / "owned", 0o600)
    (new / "etc").mkdir()
    (new / "etc" / "os-release").write_text("ID=polybuild\n")
    blob = io.BytesIO()
    changes_layer(lower, new, blob, LayerFormat(compression=Compression.ZSTD))
    target = tmp_path / "target"
    subprocess.run(["cp", "-a", str(lower), str(target)], check=True)
    blob.seek(0)
    unpack_layer(blob, target, trusted=True)
    assert snapshot(target, dir_mtimes=False) == snapshot(new, dir_mtimes=False)
    assert hardlink_groups(target) == hardlink_groups(new)
