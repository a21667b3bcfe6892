"""The first entry in which two layer blobs differ: both tars read in step, forwards only.

Each blob is read from the content store and decompressed by its content (gzip, zstd, any
codec `tarstream.decompress` knows, or plain tar) through the hardened tar reader, so a
hostile layer costs no more memory than unpacking it would. File contents are compared in
1 MiB chunks and hashed as they stream; nothing holds a whole layer or file.

Entries are matched by path in the order polybuild writes them (depth first, names in
byte order, parents before children): when the two tars have different paths at the same
place, the one that sorts first is reported as present in one layer only. Layers from a
writer that orders entries otherwise may report an entry as missing that only moved.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import cast

from polybuild.errors import BlobNotFoundError, ImageError
from polybuild.image.config import rfc3339
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.tarstream import reader as tarreader
from polybuild.tarstream.decompress import decompressed

__all__ = ["EntryDifference", "first_entry_difference"]

_CHUNK = 1 << 20
_TYPES = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.GNUTYPE_SPARSE: "sparse file",
    tarfile.LNKTYPE: "hard link",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.DIRTYPE: "directory",
    tarfile.FIFOTYPE: "fifo",
}
# PAX records that set fields compared on their own (or that only frame the entry).
_FRAMING_RECORDS = frozenset(
    {"path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname", "hdrcharset"}
)
_XATTR = "SCHILY.xattr."
PRESENT = "present"
ABSENT = "absent"
_Entry = tuple[tarfile.TarFile, tarfile.TarInfo]


@dataclass(frozen=True, slots=True)
class EntryDifference:
    """The first entry two layers differ in: its path, the field that differs (`presence`,
    `type`, `mode`, `uid`, `gid`, `uname`, `gname`, `size`, `mtime`, `link target`,
    `device`, `sparse map`, `xattr NAME`, `PAX record KEY` or `content`) and both values;
    `detail` says more where there is more (where the contents part)."""

    path: str
    field: str
    first: str
    second: str
    detail: str = ""


class _Side:
    """One layer being read: its entries, and which layer it is for error messages."""

    def __init__(
        self, stack: ExitStack, content: ContentStore, layer: Descriptor, which: str
    ) -> None:
        self.which = which
        self.layer = layer
        try:
            blob = stack.enter_context(content.open(layer.digest))
        except BlobNotFoundError:
            raise BlobNotFoundError(
                f"cannot compare layers: {self._name()} is not in the content store"
            ) from None
        try:
            stream = decompressed(blob)
        except tarfile.TarError as exc:
            raise self.invalid(exc) from exc
        self._entries = tarreader.read_entries(stream)
        stack.callback(self._entries.close)

    def _name(self) -> str:
        return f"the {self.which} image's layer {self.layer.digest}"

    def invalid(self, exc: Exception) -> ImageError:
        return ImageError(f"cannot compare layers: {self._name()} is not a valid tar: {exc}")

    def next(self) -> _Entry | None:
        try:
            return next(self._entries, None)
        except tarfile.TarError as exc:
            raise self.invalid(exc) from exc


def _path_key(name: str) -> tuple[bytes, ...]:
    return tuple(os.fsencode(part) for part in name.split("/") if part not in ("", "."))


def _type_name(kind: bytes) -> str:
    return _TYPES.get(kind, f"type {kind!r}")


def _show_mtime(mtime: float) -> str:
    if float(mtime).is_integer():
        try:
            return rfc3339(int(mtime))
        except (OverflowError, OSError, ValueError):
            pass
    return repr(mtime)


def _sparse(member: tarfile.TarInfo) -> list[tuple[int, int]] | None:
    # typeshed says bytes; tarfile sets a list of (offset, length) for sparse members.
    return cast(list[tuple[int, int]] | None, member.sparse)


def _header(member: tarfile.TarInfo) -> Iterator[tuple[str, str]]:
    """The fields of `member`'s headers, in the order they are reported."""
    yield "type", _type_name(member.type)
    yield "mode", f"{member.mode:04o}"
    yield "uid", str(member.uid)
    yield "gid", str(member.gid)
    yield "uname", member.uname
    yield "gname", member.gname
    yield "size", str(member.size)
    yield "mtime", _show_mtime(member.mtime)
    yield "link target", member.linkname
    if member.ischr() or member.isblk():
        yield "device", f"{member.devmajor},{member.devminor}"
    sparse = _sparse(member)
    yield "sparse map", "" if sparse is None else str(sparse)


def _records(member: tarfile.TarInfo) -> dict[str, str]:
    """The PAX records not compared as header fields (xattrs, atime, ...) by name."""
    return {
        key: value
        for key, value in member.pax_headers.items()
        if key not in _FRAMING_RECORDS and not key.startswith("GNU.sparse.")
    }


def _show_record(value: str | None, xattr: bool) -> str:
    if value is None:
        return ABSENT
    # An xattr's value is bytes (kept through surrogateescape), shown as such.
    return repr(value.encode("utf-8", "surrogateescape")) if xattr else repr(value)


def _header_difference(a: tarfile.TarInfo, b: tarfile.TarInfo) -> EntryDifference | None:
    for (field, first), (_, second) in zip(_header(a), _header(b), strict=True):
        if first != second:
            return EntryDifference(a.name, field, first, second)
    first_records, second_records = _records(a), _records(b)
    for key in sorted({*first_records, *second_records}):
        record_a, record_b = first_records.get(key), second_records.get(key)
        if record_a != record_b:
            xattr = key.startswith(_XATTR)
            field = f"xattr {key[len(_XATTR) :]}" if xattr else f"PAX record {key}"
            return EntryDifference(
                a.name, field, _show_record(record_a, xattr), _show_record(record_b, xattr)
            )
    return None


class _Data:
    """A regular file's stored bytes in one layer, read in chunks and hashed as they go."""

    def __init__(self, side: _Side, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self._side = side
        self._data = tarreader.tar_data(tar)
        sparse = _sparse(member)
        if sparse is not None and any(offset < 0 or length < 0 for offset, length in sparse):
            raise side.invalid(ValueError(f"{member.name}: negative values in its sparse map"))
        self.left = member.size if sparse is None else sum(length for _, length in sparse)
        if self.left > tar.offset - member.offset_data:
            raise side.invalid(ValueError(f"{member.name}: its sparse map needs more data"))
        self._data.seek(member.offset_data)
        self.hash = hashlib.sha256()

    def read(self, size: int) -> bytes:
        want = min(size, self.left)
        chunk = b""
        try:
            while len(chunk) < want:
                more = self._data.read(want - len(chunk))
                if not more:
                    raise tarfile.ReadError("the layer ends inside an entry's data")
                chunk += more
        except tarfile.TarError as exc:
            raise self._side.invalid(exc) from exc
        self.left -= len(chunk)
        self.hash.update(chunk)
        return chunk


def _first_unequal_byte(a: bytes, b: bytes) -> int:
    low, high = 0, min(len(a), len(b))
    while low < high:  # the prefixes a[:low] and b[:low] are equal
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _content_difference(
    a: tuple[_Side, tarfile.TarFile, tarfile.TarInfo],
    b: tuple[_Side, tarfile.TarFile, tarfile.TarInfo],
) -> EntryDifference | None:
    """Compare two regular files whose headers (so sizes and sparse maps) are equal."""
    first, second = _Data(*a), _Data(*b)
    offset = 0
    differs_at: int | None = None
    while first.left or second.left:
        chunk_a, chunk_b = first.read(_CHUNK), second.read(_CHUNK)
        if differs_at is None and chunk_a != chunk_b:
            differs_at = offset + _first_unequal_byte(chunk_a, chunk_b)
        offset += len(chunk_a)
    if differs_at is None:
        return None
    return EntryDifference(
        a[2].name,
        "content",
        f"sha256:{first.hash.hexdigest()}",
        f"sha256:{second.hash.hexdigest()}",
        detail=f"from byte {differs_at}",
    )


def _entries_in_step(
    first: _Side, second: _Side
) -> Iterator[EntryDifference | tuple[_Entry, _Entry]]:
    """Pairs of entries with the same path, or the difference that ends the walk."""
    a, b = first.next(), second.next()
    while a is not None or b is not None:
        if b is None or (a is not None and _path_key(a[1].name) < _path_key(b[1].name)):
            assert a is not None
            yield EntryDifference(a[1].name, "presence", PRESENT, ABSENT)
            return
        if a is None or _path_key(b[1].name) < _path_key(a[1].name):
            yield EntryDifference(b[1].name, "presence", ABSENT, PRESENT)
            return
        yield a, b
        a, b = first.next(), second.next()


def first_entry_difference(
    content: ContentStore, first: Descriptor, second: Descriptor
) -> EntryDifference | None:
    """The first entry in which layer blobs `first` and `second` differ; None when every
    entry is equal in every field compared (the tars may still differ in their encoding).

    A blob missing from `content` is a BlobNotFoundError; one that is not a (compressed)
    tar an ImageError naming the layer; a corrupt one a DigestMismatchError.
    """
    with ExitStack() as stack:
        sides = _Side(stack, content, first, "first"), _Side(stack, content, second, "second")
        for step in _entries_in_step(*sides):
            if isinstance(step, EntryDifference):
                return step
            (tar_a, member_a), (tar_b, member_b) = step
            found = _header_difference(member_a, member_b)
            if found is None and member_a.isreg():
                found = _content_difference(
                    (sides[0], tar_a, member_a), (sides[1], tar_b, member_b)
                )
            if found is not None:
                return found
    return None
