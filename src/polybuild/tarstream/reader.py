"""Reading tar: Python's tarfile in stream mode, hardened for hostile archives.

What a hostile layer could abuse is taken out (layers, ADD's local archives and `load`'s
image archives are all read this way). The headers of one entry (PAX records, GNU long
names, sparse maps) may read at most MAX_HEADER_BYTES (1 MiB, Go's archive/tar bound) and
all global PAX headers together as much; PAX records are parsed in linear time with strict
framing (the regexes of Python before 3.11.10/3.12.6 take hours on a 1 MiB header of digits,
CVE-2024-6232); a corrupt or truncated header after the first is an error, not a quiet end
of the archive; and members are not remembered once read. `read_entries` puts it together
for callers that go entry by entry; `tarstream.decompress.decompressed` opens the compressed
stream first. Writing headers is `tarstream.header`.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, Self, cast

from polybuild.tarstream.header import BLOCK
from polybuild.tarstream.streams import Readable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "MAX_HEADER_BYTES",
    "HeaderBudget",
    "LayerTarFile",
    "TarData",
    "parse_pax_records",
    "read_entries",
    "read_through",
    "tar_data",
]

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
