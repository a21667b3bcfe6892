"""Hostile layer tarballs never write outside the target root; each test checks the host after."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from polybuild.errors import ImageError
from polybuild.layers import UnpackError, unpack_layer
from tests.conftest import require_root
from tests.layers.trees import make_tar, member

HOST_TMP = Path("/tmp")


@pytest.fixture
def unique() -> str:
    """A name no other test or process uses, so its absence on the host means something."""
    return f"pwned-{uuid.uuid4().hex}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    target = tmp_path / "root"
    target.mkdir()
    return target


@pytest.fixture
def host_victim() -> Iterator[Path]:
    """A host file outside every root that no unpack may touch."""
    victim = HOST_TMP / f"victim-{uuid.uuid4().hex}"
    victim.write_text("host data\n")
    try:
        yield victim
    finally:
        victim.unlink(missing_ok=True)


def _assert_absent_on_host(*paths: Path) -> None:
    for path in paths:
        assert not os.path.lexists(path), f"unpack wrote outside the root: {path}"


def test_dotdot_paths_stay_inside(root: Path, unique: str) -> None:
    layer = make_tar(
        (member(f"../{unique}"), b"one level up"),
        (member(f"../../../../../../tmp/{unique}"), b"to host /tmp"),
    )
    unpack_layer(layer, root)
    _assert_absent_on_host(root.parent / unique, HOST_TMP / unique)
    assert (root / unique).read_bytes() == b"one level up"
    assert (root / "tmp" / unique).read_bytes() == b"to host /tmp"


def test_absolute_paths_stay_inside(root: Path, unique: str) -> None:
    layer = make_tar((member(f"/tmp/{unique}"), b"absolute"))
    unpack_layer(layer, root)
    _assert_absent_on_host(HOST_TMP / unique)
    assert (root / "tmp" / unique).read_bytes() == b"absolute"


def test_dotdot_inside_a_name_is_clamped_at_the_root(root: Path, unique: str) -> None:
    layer = make_tar(
        (member(f"a/../../{unique}"), b"x"), (member(f"a/b/../../../../{unique}-2"), b"y")
    )
    unpack_layer(layer, root)
    _assert_absent_on_host(root.parent / unique, root.parent / f"{unique}-2")
    assert (root / unique).read_bytes() == b"x"
    assert (root / f"{unique}-2").read_bytes() == b"y"


def test_symlink_to_slash_then_file_through_it(root: Path, unique: str) -> None:
    layer = make_tar(
        (member("link", tarfile.SYMTYPE, linkname="/"), None),
        (member(f"link/tmp/{unique}"), b"through the link"),
    )
    unpack_layer(layer, root)
    _assert_absent_on_host(HOST_TMP / unique)
    assert os.readlink(root / "link") == "/"
    assert (root / "tmp" / unique).read_bytes() == b"through the link"


def test_symlink_chains_resolve_inside_and_loops_fail(root: Path, unique: str) -> None:
    layer = make_tar(
        (member("a", tarfile.SYMTYPE, linkname="b"), None),
        (member("b", tarfile.SYMTYPE, linkname="sub/c"), None),
        (member("sub", tarfile.DIRTYPE), None),
        (member("sub/c", tarfile.SYMTYPE, linkname="../../../../../../tmp"), None),
        (member(f"a/{unique}"), b"chained"),
    )
    unpack_layer(layer, root)
    _assert_absent_on_host(HOST_TMP / unique)
    assert (root / "tmp" / unique).read_bytes() == b"chained"

    loop = make_tar(
        (member("x", tarfile.SYMTYPE, linkname="y"), None),
        (member("y", tarfile.SYMTYPE, linkname="/x"), None),
        (member(f"x/{unique}"), b"never"),
    )
    with pytest.raises(UnpackError, match="symbolic links"):
        unpack_layer(loop, root)
    _assert_absent_on_host(HOST_TMP / unique)


def test_file_over_an_existing_symlink_replaces_the_link(
    root: Path, unique: str, host_victim: Path
) -> None:
    layer = make_tar(
        (member("new", tarfile.SYMTYPE, linkname=f"/tmp/{unique}"), None),
        (member("new"), b"must not follow"),
        (member("old", tarfile.SYMTYPE, linkname=str(host_victim)), None),
        (member("old"), b"must not truncate the victim"),
        (member("dirlink", tarfile.SYMTYPE, linkname="/tmp"), None),
        (member("dirlink", tarfile.DIRTYPE, mode=0o700), None),
    )
    unpack_layer(layer, root)
    _assert_absent_on_host(HOST_TMP / unique)
    assert host_victim.read_text() == "host data\n"
    assert (root / "new").read_bytes() == b"must not follow"
    assert (root / "old").read_bytes() == b"must not truncate the victim"
    assert stat.S_ISDIR(os.lstat(root / "dirlink").st_mode)


def _fingerprint(path: Path) -> tuple[int, int, int, int, str]:
    st = os.lstat(path)
    return (
        st.st_ino,
        st.st_nlink,
        st.st_mtime_ns,
        stat.S_IMODE(st.st_mode),
        hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def _linked_to(root: Path, target: Path) -> list[str]:
    tst = os.stat(target)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) == (tst.st_dev, tst.st_ino):
                found.append(os.path.join(dirpath, name))
    return found


@pytest.mark.parametrize(
    "members",
    [
        [(member("shadow", tarfile.LNKTYPE, linkname="/etc/shadow"), None)],
        [(member("shadow", tarfile.LNKTYPE, linkname="../../../../../etc/shadow"), None)],
        [
            (member("etc-link", tarfile.SYMTYPE, linkname="/etc"), None),
            (member("shadow", tarfile.LNKTYPE, linkname="etc-link/shadow"), None),
        ],
    ],
    ids=["absolute", "dotdot", "via-symlink"],
)
@pytest.mark.root
def test_hardlink_to_host_shadow_is_refused(
    root: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]
) -> None:
    require_root()
    shadow = Path("/etc/shadow")
    before = _fingerprint(shadow)
    with pytest.raises(UnpackError, match="hard link target"):
        unpack_layer(make_tar(*members), root)
    assert _fingerprint(shadow) == before
    assert _linked_to(root, shadow) == []
    assert not os.path.lexists(root / "shadow")


def test_hardlink_inside_the_root_still_works(root: Path) -> None:
    layer = make_tar(
        (member("etc", tarfile.DIRTYPE), None),
        (member("etc/shadow", mode=0o640), b"root:*:1::::::\n"),
        (member("alias", tarfile.LNKTYPE, linkname="/etc/shadow"), None),
    )
    unpack_layer(layer, root)
    assert os.path.samefile(root / "alias", root / "etc" / "shadow")


@pytest.mark.root
def test_device_nodes_in_a_user_layer_are_skipped(root: Path, unique: str) -> None:
    require_root()
    layer = make_tar(
        (member("dev", tarfile.DIRTYPE), None),
        (member(f"dev/disk-{unique}", tarfile.BLKTYPE, devmajor=8, devminor=0), None),
        (member(f"dev/mem-{unique}", tarfile.CHRTYPE, devmajor=1, devminor=1), None),
    )
    result = unpack_layer(layer, root)
    assert sorted(s.name for s in result.skipped) == [f"dev/disk-{unique}", f"dev/mem-{unique}"]
    assert os.listdir(root / "dev") == []
    _assert_absent_on_host(Path("/dev") / f"disk-{unique}", Path("/dev") / f"mem-{unique}")

    trusted_root = root.parent / "trusted"
    trusted_root.mkdir()
    layer.seek(0)
    unpack_layer(layer, trusted_root, trusted=True)
    assert stat.S_ISBLK(os.lstat(trusted_root / "dev" / f"disk-{unique}").st_mode)


@pytest.mark.root
def test_setid_bits_and_privileged_xattrs_need_trust(root: Path) -> None:
    require_root()
    cap = bytes.fromhex("0100000200200000000000000000000000000000")
    suid = member("su", mode=0o6755)
    suid.pax_headers = {
        "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape"),
        "SCHILY.xattr.user.ok": "fine",
    }
    opaque = member("d", tarfile.DIRTYPE)
    opaque.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y"}
    layer = make_tar((suid, b"#!/bin/sh\n"), (opaque, None))
    unpack_layer(layer, root)
    assert stat.S_IMODE(os.lstat(root / "su").st_mode) == 0o755
    assert os.listxattr(root / "su") == ["user.ok"]
    assert os.listxattr(root / "d") == []

    trusted = root.parent / "trusted"
    trusted.mkdir()
    layer.seek(0)
    unpack_layer(layer, trusted, trusted=True)
    assert stat.S_IMODE(os.lstat(trusted / "su").st_mode) == 0o6755
    assert os.getxattr(trusted / "su", "security.capability") == cap
    # Overlay control attributes never come from layer content, trusted or not.
    assert "trusted.overlay.opaque" not in os.listxattr(trusted / "d")


def test_whiteouts_through_symlinks_cannot_delete_host_files(root: Path, host_victim: Path) -> None:
    # The same name inside the root is what the whiteout really means, and it goes.
    inside = root / "tmp" / host_victim.name
    inside.parent.mkdir()
    inside.write_text("lower layer data\n")
    layer = make_tar(
        (member("l", tarfile.SYMTYPE, linkname=str(host_victim.parent)), None),
        (member(f"l/.wh.{host_victim.name}"), b""),
        (member("l/.wh..wh..opq"), b""),
        (member(f"../../../../../{host_victim.parent}/.wh.{host_victim.name}"), b""),
    )
    unpack_layer(layer, root)
    assert host_victim.read_text() == "host data\n"
    assert not inside.exists()


@pytest.mark.parametrize("name", [".wh..", ".wh...", "dir/.wh."])
def test_whiteouts_without_a_name_are_refused(root: Path, name: str) -> None:
    (root / "dir").mkdir()
    (root / "dir" / "keep").write_text("x")
    with pytest.raises(UnpackError, match="whiteout"):
        unpack_layer(make_tar((member(name), b"")), root)
    assert (root / "dir" / "keep").exists()


def test_file_under_a_file_is_an_error_naming_the_entry(root: Path) -> None:
    layer = make_tar((member("plain"), b"x"), (member("plain/child"), b"y"))
    with pytest.raises(UnpackError, match="'plain/child'.*not a directory"):
        unpack_layer(layer, root)


@pytest.mark.parametrize(
    "blob",
    [
        b"\x1f\x8b" + b"not gzip at all" * 40,
        b"\x28\xb5\x2f\xfd" + b"not zstd" * 40,
        gzip.compress(b"\x00" * 100 + b"truncated tar"),
        b"plain garbage" * 100,
    ],
    ids=["gzip", "zstd", "truncated", "plain"],
)
def test_corrupt_layers_are_image_errors(root: Path, blob: bytes) -> None:
    with pytest.raises(ImageError):
        unpack_layer(io.BytesIO(blob), root)
