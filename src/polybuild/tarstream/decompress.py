"""Opening a compressed tar stream by its content: gzip, bzip2, xz, zstd or plain, forwards
only and with bounded decoder memory (layers, ADD's local archives and `load`'s archives)."""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
from typing import TYPE_CHECKING, cast

import zstandard
from isal import igzip, isal_zlib

from polybuild.tarstream.streams import Prefixed, Readable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["MAX_XZ_MEMORY", "decompressed"]

_CHUNK = 1 << 20

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
