"""What an untrusted layer may carry, decided without touching a file system."""

from __future__ import annotations

import tarfile

import pytest

from polybuild.layers.policy import entry_refusal, layer_xattrs, permitted_mode, xattr_permitted


def _member(kind: bytes, mode: int = 0o644, pax: dict[str, str] | None = None) -> tarfile.TarInfo:
    member = tarfile.TarInfo("f")
    member.type = kind
    member.mode = mode
    member.pax_headers = dict(pax or {})
    return member


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_device_nodes_only_from_trusted_layers(kind: bytes) -> None:
    assert entry_refusal(_member(kind), trusted=True) is None
    assert entry_refusal(_member(kind), trusted=False) == "device node in an untrusted layer"


def test_unknown_entry_types_are_refused_even_when_trusted() -> None:
    assert entry_refusal(_member(b"Z"), trusted=True) == "unsupported tar entry type b'Z'"
    for kind in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
        assert entry_refusal(_member(kind), trusted=False) is None


def test_set_id_bits_are_dropped_from_untrusted_files_not_directories() -> None:
    assert permitted_mode(_member(tarfile.REGTYPE, 0o6755), trusted=True) == 0o6755
    assert permitted_mode(_member(tarfile.REGTYPE, 0o6755), trusted=False) == 0o755
    assert permitted_mode(_member(tarfile.DIRTYPE, 0o3777), trusted=False) == 0o3777


def test_overlay_xattrs_never_come_from_a_layer() -> None:
    member = _member(
        tarfile.REGTYPE,
        pax={
            "SCHILY.xattr.trusted.overlay.opaque": "y",
            "SCHILY.xattr.user.overlay.redirect": "x",
            "SCHILY.xattr.user.comment": "hi",
            "mtime": "1",
        },
    )
    assert list(layer_xattrs(member)) == [("user.comment", b"hi")]


def test_untrusted_layers_may_set_only_unprivileged_xattrs() -> None:
    for name in ("user.a", "system.posix_acl_access", "system.posix_acl_default"):
        assert xattr_permitted(name, trusted=False)
    for name in ("security.capability", "trusted.x"):
        assert not xattr_permitted(name, trusted=False)
        assert xattr_permitted(name, trusted=True)
