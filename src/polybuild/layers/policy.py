"""What of a layer's entries is applied: supported entry types and the rules for untrusted layers.

A trusted layer (a base image, one we built) is applied as it is. An untrusted one may not
create device nodes, set set-id bits on files or carry xattrs that grant privileges
(security.capability, trusted.*): those are skipped and recorded. Overlayfs's own xattrs are
never taken from any layer, since they steer overlayfs itself (redirects, opaque dirs).
"""

from __future__ import annotations

import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SkippedEntry", "entry_refusal", "layer_xattrs", "permitted_mode", "xattr_permitted"]

_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
# An untrusted layer may carry only attributes that grant no privileges.
_UNTRUSTED_XATTRS = ("user.", "system.posix_acl_access", "system.posix_acl_default")
_PAX_XATTR = "SCHILY.xattr."


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """An entry that was deliberately not applied, and why."""

    name: str
    reason: str


def entry_refusal(member: tarfile.TarInfo, trusted: bool) -> str | None:
    """Why `member` (not a whiteout) is not applied at all, or None when it is."""
    if member.ischr() or member.isblk():
        return None if trusted else "device node in an untrusted layer"
    if member.isreg() or member.isdir() or member.issym() or member.islnk() or member.isfifo():
        return None
    return f"unsupported tar entry type {member.type!r}"


def permitted_mode(member: tarfile.TarInfo, trusted: bool) -> int:
    """The permission bits `member` gets: an untrusted layer's files lose set-id bits."""
    mode = member.mode & 0o7777
    if not trusted and not member.isdir():
        mode &= ~_SPECIAL_BITS
    return mode


def layer_xattrs(member: tarfile.TarInfo) -> Iterator[tuple[str, bytes]]:
    """The extended attributes `member` carries (name, value), overlayfs's own left out."""
    for key, raw in member.pax_headers.items():
        if not key.startswith(_PAX_XATTR):
            continue
        name, value = key[len(_PAX_XATTR) :], raw.encode("utf-8", "surrogateescape")
        if not name.startswith(_OVERLAY_XATTRS):
            yield name, value


def xattr_permitted(name: str, trusted: bool) -> bool:
    """Whether a layer may set extended attribute `name`."""
    return trusted or name.startswith(_UNTRUSTED_XATTRS)
