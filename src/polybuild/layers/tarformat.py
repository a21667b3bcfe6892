"""The tar format: byte-exact PAX headers for writing, a hardened stream reader for unpacking.

Writing: headers whose bytes depend only on the entry, never the host.
Reading: Python's tarfile in stream mode, with what a hostile layer could abuse taken out
(layers, ADD's local archives and `load`'s image archives are all read this way).
The headers of one entry (PAX records, GNU long names, sparse maps) may read at most
MAX_HEADER_BYTES (1 MiB, Go's archive/tar bound) and all global PAX headers together
as much; PAX records are parsed in linear time with strict framing (the regexes of
Python before 3.11.10/3.12.6 take hours on a 1 MiB header of digits, CVE-2024-6232); a
corrupt or truncated header after the first is an error, not a quiet end of the archive;
and members are not remembered once read. `read_entries` puts it together for callers
that go entry by entry; `decompressed` opens gzip, bzip2, xz and zstd archives by content,
with bounded decoder memory.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import re
import tarfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self, cast

import zstandard
from isal import igzip, isal_zlib

from polybuild.layers.compress import Prefixed, Readable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "BLKTYPE",
    "BLOCK",
    "CHRTYPE",
    "DIRTYPE",
    "FIFOTYPE",
    "LNKTYPE",
    "MAX_HEADER_BYTES",
    "MAX_XZ_MEMORY",
    "REGTYPE",
    "SYMTYPE",
    "ByteSink",
    "HeaderBudget",
    "LayerTarFile",
    "Readable",
    "TarData",
    "TarEntry",
    "decompressed",
    "encode_header",
    "end_of_archive",
    "padding",
    "parse_pax_records",
    "read_entries",
    "read_through",
    "tar_data",
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


MAX_HEADER_BYTES = 1 << 20
_CHUNK = 1 << 20
# A record starts with its decimal length; 20 digits hold any 64-bit size.
_RECORD_LENGTH = re.compile(rb"([0-9]{1,20}) ")


def parse_pax_records(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (keyword, value) records of PAX header data, in order; NUL padding ends them.

    Every record must be `LENGTH KEYWORD=VALUE\n` with LENGTH counting the whole record;
    anything else raises tarfile.ReadError. Linear in len(data).
    """
    records: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(data) and data[pos] != 0:
        match = _RECORD_LENGTH.match(data, pos)
        length = int(match.group(1)) if match else 0
        end = pos + length
        # The shortest record is "5 k=\n".
        if match is None or length < 5 or end > len(data) or data[end - 1] != 0x0A:
            raise tarfile.ReadError(f"malformed PAX record at byte {pos}")
        keyword, equals, value = data[match.end() : end - 1].partition(b"=")
        if not keyword or not equals:
            raise tarfile.ReadError(f"malformed PAX record at byte {pos}")
        records.append((keyword, value))
        pos = end
    return records


class TarData(Protocol):
    """tarfile's stream of the decompressed tar, read forwards only."""

    def read(self, size: int, /) -> bytes: ...
    def tell(self) -> int: ...
    def seek(self, pos: int, /) -> object: ...


def tar_data(tar: tarfile.TarFile) -> TarData:
    """The stream `tar` reads from, positioned where tarfile left it."""
    assert tar.fileobj is not None  # an open TarFile always has one
    return tar.fileobj


def _blocks(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class HeaderBudget(io.RawIOBase):
    """A readable stream that caps the bytes read inside `headers()` blocks.

    tarfile reads a PAX header, GNU long name or sparse map whole into memory, whatever
    size its header claims; only the stream underneath sees those reads happen.
    """

    def __init__(self, inner: Readable) -> None:
        super().__init__()
        self._inner = inner
        self._left: int | None = None

    def readable(self) -> bool:
        return True

    @contextmanager
    def headers(self) -> Iterator[None]:
        """Within this block, reading more than MAX_HEADER_BYTES raises tarfile.ReadError."""
        # tarfile reads ahead one record (10 KiB) at a time, which may already be data.
        self._left = MAX_HEADER_BYTES + 2 * tarfile.RECORDSIZE
        try:
            yield
        finally:
            self._left = None

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size) or b""
        if self._left is not None:
            self._left -= len(data)
            if self._left < 0:
                raise tarfile.ReadError(
                    f"the headers of one entry take more than {MAX_HEADER_BYTES} bytes"
                )
        return data

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def _decode(value: bytes, encoding: str, fallback: str, errors: str) -> str:
    try:
        return value.decode(encoding, "strict")
    except UnicodeDecodeError:
        return value.decode(fallback, errors)


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile's TarInfo with strict header framing and linear-time PAX parsing."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        # tarfile ends the archive quietly at a bad checksum or short block after the
        # first entry, so the rest of a layer (whiteouts too) would be ignored while its
        # diff-id still matches. Only an empty read or a zero block really end it.
        if not buf or buf == bytes(BLOCK):
            return super().frombuf(buf, encoding, errors)
        try:
            info = super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as exc:
            raise tarfile.ReadError(f"corrupt entry header: {exc}") from None
        if info.size < 0:  # GNU base-256 numbers can be negative
            raise tarfile.ReadError(f"corrupt entry header: negative size {info.size}")
        return info

    def _proc_pax(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        """Replaces tarfile's own (reached through its _proc_member dispatch).

        Same results as Python 3.11's for well-formed headers, without its backtracking
        regexes; malformed records are errors.
        """
        data = tar_data(tar)
        records = parse_pax_records(data.read(_blocks(self.size)))
        glob = cast(dict[str, str], tar.pax_headers)
        headers = glob if self.type == tarfile.XGLTYPE else dict(glob)
        for keyword, value in records:
            if keyword == b"hdrcharset":
                headers["hdrcharset"] = value.decode("utf-8", tar.errors)
        names = tar.encoding or tarfile.ENCODING
        name_encoding = names if headers.get("hdrcharset") == "BINARY" else "utf-8"
        sparse00: dict[bytes, list[int]] = {b"GNU.sparse.offset": [], b"GNU.sparse.numbytes": []}
        for keyword, value in records:
            key = _decode(keyword, "utf-8", "utf-8", tar.errors)
            encoding = name_encoding if key in tarfile.PAX_NAME_FIELDS else "utf-8"
            headers[key] = _decode(value, encoding, names, tar.errors)
            if keyword in sparse00:
                sparse00[keyword].append(int(value))
        try:
            member = self.fromtarfile(tar)
        except tarfile.HeaderError as exc:
            raise tarfile.ReadError(f"bad header after PAX header: {exc}") from None
        if "GNU.sparse.map" in headers:
            numbers = [int(x) for x in headers["GNU.sparse.map"].split(",")]
            member.sparse = _pairs(numbers)
        elif "GNU.sparse.size" in headers:
            offsets, sizes = sparse00.values()
            member.sparse = cast(bytes, list(zip(offsets, sizes, strict=False)))
        elif headers.get("GNU.sparse.major") == "1" and headers.get("GNU.sparse.minor") == "0":
            member.sparse = _pairs(_read_sparse_map(data))
            member.offset_data = data.tell()
        if self.type != tarfile.XGLTYPE:
            _apply_pax(member, headers)
            member.offset = self.offset
            if "size" in headers:
                # The record replaces the header's size, so the next header moves too.
                offset = member.offset_data
                if member.isreg() or member.type not in tarfile.SUPPORTED_TYPES:
                    offset += _blocks(member.size)
                tar.offset = offset
        return member


def _pairs(numbers: list[int]) -> bytes:
    # typeshed says bytes; tarfile keeps a list of (offset, length) pairs.
    return cast(bytes, list(zip(numbers[::2], numbers[1::2], strict=False)))


def _read_sparse_map(data: TarData) -> list[int]:
    """The numbers of a sparse map in format 1.0: a count, then 2 * count lines, in blocks."""
    buf = data.read(BLOCK)
    count, _, buf = buf.partition(b"\n")
    wanted = 2 * int(count)
    numbers: list[int] = []
    while len(numbers) < wanted:
        if b"\n" not in buf:
            if len(buf) > BLOCK:  # no number is that long
                raise tarfile.ReadError("malformed sparse map")
            block = data.read(BLOCK)
            if not block:
                raise tarfile.ReadError("sparse map ends early")
            buf += block
            continue
        number, _, buf = buf.partition(b"\n")
        numbers.append(int(number))
    return numbers


def _apply_pax(member: tarfile.TarInfo, headers: dict[str, str]) -> None:
    """Set the fields PAX records override, as tarfile's own TarInfo._apply_pax_info."""
    for keyword, value in headers.items():
        if keyword == "GNU.sparse.name":
            member.path = value
        elif keyword in ("GNU.sparse.size", "GNU.sparse.realsize"):
            member.size = int(value)
        elif keyword in tarfile.PAX_FIELDS:
            parsed: object = value
            if keyword in tarfile.PAX_NUMBER_FIELDS:
                try:
                    parsed = tarfile.PAX_NUMBER_FIELDS[keyword](value)
                except ValueError:
                    parsed = 0
            if keyword == "path":
                parsed = value.rstrip("/")
            setattr(member, keyword, parsed)
    member.pax_headers = dict(headers)


class LayerTarFile(tarfile.TarFile):
    """A hardened tarfile for stream mode (open it with mode "r|").

    Uses the strict TarInfo above, forgets members once read (tarfile keeps them all),
    checks the size of global PAX headers, and turns the ValueError, IndexError and
    RecursionError tarfile's parsers let out on malformed input into tarfile.ReadError.
    """

    tarinfo = _StrictTarInfo
    members: list[tarfile.TarInfo]  # set by TarFile.__init__; missing from typeshed

    def next(self) -> tarfile.TarInfo | None:
        try:
            member = super().next()
        except (ValueError, OverflowError, IndexError, RecursionError) as exc:
            raise tarfile.ReadError(f"malformed entry header: {exc!r}") from None
        self.members.clear()
        glob = self.pax_headers or {}
        if sum(len(key) + len(value) for key, value in glob.items()) > MAX_HEADER_BYTES:
            raise tarfile.ReadError(f"global PAX headers take more than {MAX_HEADER_BYTES} bytes")
        return member


def read_through(tar: tarfile.TarFile) -> None:
    """Read the rest of the current entry's data, so the stream is at the next header.

    tarfile would skip it by itself, one 10 KiB record at a time even past the end of
    the stream, so a forged size of 10**15 bytes on a short stream would take hours.
    """
    data = tar_data(tar)
    pos = data.tell()
    if pos > tar.offset:
        raise tarfile.ReadError("entry data overlaps the next header")
    while pos < tar.offset:
        chunk = data.read(min(_CHUNK, tar.offset - pos))
        if not chunk:
            raise tarfile.ReadError("unexpected end of data")
        pos += len(chunk)


def read_entries(
    stream: Readable,
) -> Generator[tuple[tarfile.TarFile, tarfile.TarInfo], None, None]:
    """Each entry of the plain tar in `stream`, with the hardened tarfile reading it.

    The same reading as unpacking a layer: headers within HeaderBudget, LayerTarFile's
    checks, members forgotten, and whatever data of an entry the caller leaves unread read
    through before the next header. Read an entry's data (tar.extractfile, or tar_data from
    member.offset_data) before taking the next entry. Malformed tar raises tarfile.TarError.
    """
    budget = HeaderBudget(stream)
    with budget.headers():  # opening reads the first entry's headers
        tar = LayerTarFile.open(fileobj=budget, mode="r|", errors="surrogateescape")
    with tar:
        while True:
            with budget.headers():
                member = tar.next()
            if member is None:
                return
            yield tar, member
            read_through(tar)


# About four times what xz -9 needs to decode; the dictionary is allocated as data fills it.
MAX_XZ_MEMORY = 256 << 20
_MAGIC_BYTES = 6
_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# isal's stub declares its error class as an instance; it is an Exception subclass.
_ISAL_ERROR = cast(type[Exception], isal_zlib.error)
_CODEC_ERRORS = (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError, _ISAL_ERROR)


class _XzReader(io.RawIOBase):
    """xz data, stream after stream, decoded with at most MAX_XZ_MEMORY.

    lzma.LZMAFile has no memory limit, and its decoder allocates the dictionary the stream
    header asks for (up to 4 GiB) as the data fills it.
    """

    def __init__(self, raw: Readable) -> None:
        super().__init__()
        self._raw = raw
        self._decoder = self._new_decoder()
        self._done = False

    @staticmethod
    def _new_decoder() -> lzma.LZMADecompressor:
        return lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=MAX_XZ_MEMORY)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while not self._done:
            if self._decoder.eof:
                # Another stream may follow, after zero bytes of stream padding.
                rest = self._decoder.unused_data.lstrip(b"\0")
                while not rest:
                    chunk = self._raw.read(_CHUNK)
                    if not chunk:
                        self._done = True
                        return 0
                    rest = chunk.lstrip(b"\0")
                self._decoder = self._new_decoder()
            elif self._decoder.needs_input:
                rest = self._raw.read(_CHUNK) or b""
                if not rest:
                    raise EOFError("the xz data ends early")
            else:
                rest = b""
            data = self._decoder.decompress(rest, len(view))
            if data:
                view[: len(data)] = data
                return len(data)
        return 0


class _ReadErrors(io.RawIOBase):
    """Reads `inner`, turning codec and I/O errors into tarfile.ReadError."""

    def __init__(self, inner: Readable) -> None:
        super().__init__()
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(view)) or b""
        except _CODEC_ERRORS as exc:
            raise tarfile.ReadError(f"cannot read the compressed data: {exc}") from exc
        view[: len(data)] = data
        return len(data)


def decompressed(raw: Readable) -> io.RawIOBase:
    """The tar in `raw`, read forwards only: gzip, bzip2, xz, zstd (by magic bytes) or plain.

    Decoders hold little memory: 32 KiB for gzip, 3.6 MiB for bzip2, MAX_XZ_MEMORY for xz,
    and a window of at most 128 MiB for zstd (zstandard's default; frames asking for more
    are refused). Corrupt or truncated data, like a failed read, raises tarfile.ReadError.
    """
    head = b""
    try:
        while len(head) < _MAGIC_BYTES and (more := raw.read(_MAGIC_BYTES - len(head))):
            head += more
    except OSError as exc:
        raise tarfile.ReadError(f"cannot read: {exc}") from exc
    source = io.BufferedReader(Prefixed(head, raw), _CHUNK)
    inner: Readable = source
    if head.startswith(_GZIP_MAGIC):
        inner = igzip.IGzipFile(fileobj=source, mode="rb")  # type: ignore[no-untyped-call]
    elif head.startswith(_BZIP2_MAGIC):
        inner = bz2.BZ2File(source)
    elif head.startswith(_XZ_MAGIC):
        inner = io.BufferedReader(_XzReader(source), _CHUNK)
    elif head.startswith(_ZSTD_MAGIC):
        inner = zstandard.ZstdDecompressor().stream_reader(
            source, read_across_frames=True, closefd=False
        )
    return _ReadErrors(inner)
