"""Writing tar: byte-exact PAX headers whose bytes depend only on the entry, never the host."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "BLKTYPE",
    "BLOCK",
    "CHRTYPE",
    "DIRTYPE",
    "FIFOTYPE",
    "LNKTYPE",
    "REGTYPE",
    "SYMTYPE",
    "ByteSink",
    "TarEntry",
    "encode_header",
    "end_of_archive",
    "padding",
]

BLOCK = 512
REGTYPE = b"0"
LNKTYPE = b"1"
SYMTYPE = b"2"
CHRTYPE = b"3"
BLKTYPE = b"4"
DIRTYPE = b"5"
FIFOTYPE = b"6"
_PAXTYPE = b"x"
# Python's tarfile names its extended headers this way too; any fixed name keeps output stable.
_PAX_NAME = b"././@PaxHeader"


class ByteSink(Protocol):
    """Where tar bytes go: a file, a pipe or a LayerWriter; only `write` is needed."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One tar member's metadata; `name` is relative, without a trailing slash."""

    name: str
    type: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


def _octal(value: int, width: int) -> bytes | None:
    """`value` as a NUL-terminated octal field, or None when it does not fit."""
    if value < 0 or value >= 8 ** (width - 1):
        return None
    return b"%0*o\0" % (width - 1, value)


def _record(key: bytes, value: bytes) -> bytes:
    # The length prefix counts itself, so grow it until the total is self-consistent.
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length = len(str(length).encode()) + len(body)
    return str(length).encode() + body


def _ustar(
    name: bytes,
    typeflag: bytes,
    *,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes,
    devmajor: int,
    devminor: int,
) -> bytes:
    def num(value: int, width: int) -> bytes:
        return _octal(value, width) or b"0" * (width - 1) + b"\0"

    header = b"".join(
        [
            name[:100].ljust(100, b"\0"),
            num(mode, 8),
            num(uid, 8),
            num(gid, 8),
            num(size, 12),
            num(mtime, 12),
            b" " * 8,
            typeflag,
            linkname[:100].ljust(100, b"\0"),
            b"ustar\x0000",
            b"\0" * 32,  # uname: empty, so layers never depend on the host's user names
            b"\0" * 32,  # gname
            num(devmajor, 8),
            num(devminor, 8),
            b"\0" * 155,  # prefix: unused, long names go to PAX records instead
        ]
    ).ljust(BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(header)
    return header[:148] + checksum + header[156:]


def encode_header(entry: TarEntry) -> bytes:
    """The header block(s) for `entry`: a PAX extended header first when fields do not fit."""
    name = os.fsencode(entry.name) + (b"/" if entry.type == DIRTYPE else b"")
    linkname = os.fsencode(entry.linkname)
    records: dict[bytes, bytes] = {}
    if len(name) > 100 or not name.isascii():
        records[b"path"] = name
    if len(linkname) > 100 or not linkname.isascii():
        records[b"linkpath"] = linkname
    for field, number, width in (
        (b"uid", entry.uid, 8),
        (b"gid", entry.gid, 8),
        (b"size", entry.size, 12),
        (b"mtime", entry.mtime, 12),
    ):
        if _octal(number, width) is None:
            records[field] = str(number).encode()
    for xattr, value in entry.xattrs:
        records[b"SCHILY.xattr." + os.fsencode(xattr)] = value
    blocks = []
    if records:
        data = b"".join(_record(key, records[key]) for key in sorted(records))
        blocks.append(
            _ustar(
                _PAX_NAME,
                _PAXTYPE,
                mode=0o644,
                uid=0,
                gid=0,
                size=len(data),
                mtime=0,
                linkname=b"",
                devmajor=0,
                devminor=0,
            )
        )
        blocks.append(data + padding(len(data)))
    blocks.append(
        _ustar(
            name,
            entry.type,
            mode=entry.mode,
            uid=entry.uid,
            gid=entry.gid,
            size=entry.size,
            mtime=entry.mtime,
            linkname=linkname,
            devmajor=entry.devmajor,
            devminor=entry.devminor,
        )
    )
    return b"".join(blocks)


def padding(size: int) -> bytes:
    """Zero bytes that fill the last block of `size` bytes of member data."""
    return b"\0" * (-size % BLOCK)


def end_of_archive(out: ByteSink) -> None:
    """Write the two zero blocks that end a tar archive."""
    out.write(b"\0" * (2 * BLOCK))
