"""Layer compression: one streaming pass compresses a tar and yields digest, size and diff-id."""

from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, cast

import zstandard
from isal import igzip, isal_zlib

from polybuild.errors import CompressionError
from polybuild.image import mediatypes
from polybuild.image.commit import CommitOnExit
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.image.mediatypes import (
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_ZSTD,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
)
from polybuild.layers.compression import Compression
from polybuild.tarstream.streams import Prefixed

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = [
    "Compression",
    "CompressionError",
    "DecompressedLayer",
    "LayerWriter",
    "compression_for_media_type",
    "detect_compression",
    "layer_media_type",
    "open_decompressed",
]

_GZIP_MAGIC = b"\x1f\x8b"
# isal's stub declares its error class as an instance; it is an Exception subclass.
_ISAL_ERROR = cast(type[Exception], isal_zlib.error)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Fixed gzip header: deflate, no flags (no file name), mtime 0, XFL 0, OS 255 ("unknown"),
# the same bytes Go's compress/gzip writes, so the header never depends on the host or clock.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
# Compressing in large batches keeps per-call overhead low: tarfile writes 512-byte headers.
_BATCH = 1 << 20
_QUEUED = 4  # batches between the writer's thread and the compressing one


# Levels: gzip uses ISA-L's own scale 0..3 (0 still compresses, unlike zlib's 0) and its
# default 2; zstd uses zstandard's 1..22 and its default 3 (benchmarks/layers.py compares).
_DEFAULT_LEVEL = {Compression.GZIP: 2, Compression.ZSTD: 3, Compression.NONE: 0}
_LEVEL_RANGE = {Compression.GZIP: (0, 3), Compression.ZSTD: (1, 22), Compression.NONE: (0, 0)}


def layer_media_type(compression: Compression, *, docker: bool = False) -> str:
    """The layer media type for `compression`, OCI by default or Docker schema 2."""
    if docker:
        table = {
            Compression.GZIP: DOCKER_LAYER_GZIP,
            Compression.ZSTD: DOCKER_LAYER_ZSTD,
            Compression.NONE: DOCKER_LAYER,
        }
    else:
        table = {
            Compression.GZIP: OCI_LAYER_GZIP,
            Compression.ZSTD: OCI_LAYER_ZSTD,
            Compression.NONE: OCI_LAYER,
        }
    return table[compression]


def compression_for_media_type(media_type: str) -> Compression:
    """The compression a layer media type announces (CompressionError for a non-layer type)."""
    try:
        return Compression(mediatypes.layer_compression(media_type) or "none")
    except ValueError:
        raise CompressionError(f"not a layer media type: {media_type!r}") from None


class _Compressor:
    """Uniform compress/finish over gzip (ISA-L raw deflate + our own framing), zstd and none."""

    def __init__(self, compression: Compression, level: int) -> None:
        self._compression = compression
        self._crc = 0
        self._isize = 0
        if compression is Compression.GZIP:
            self._deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
        elif compression is Compression.ZSTD:
            # threads=0 keeps the output a pure function of the input and the level.
            cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=0)
            self._zstd = cctx.compressobj()

    def start(self) -> bytes:
        return _GZIP_HEADER if self._compression is Compression.GZIP else b""

    def compress(self, data: bytes) -> bytes:
        if self._compression is Compression.GZIP:
            self._crc = isal_zlib.crc32(data, self._crc)
            self._isize += len(data)
            return self._deflate.compress(data)
        if self._compression is Compression.ZSTD:
            return self._zstd.compress(data)
        return data

    def finish(self) -> bytes:
        if self._compression is Compression.GZIP:
            trailer = struct.pack("<II", self._crc & 0xFFFFFFFF, self._isize & 0xFFFFFFFF)
            return self._deflate.flush() + trailer
        if self._compression is Compression.ZSTD:
            return self._zstd.flush()
        return b""


class LayerWriter(CommitOnExit, io.RawIOBase):
    """A write-only stream taking the layer tar; compresses it into `out` and hashes both sides.

    Use as a context manager (or call `finish()`); `layer` is set once finished.
    Past one batch, a thread of its own compresses (the costliest part) while the writer's
    thread hashes the tar (the diff-id) and hashes and writes out what was compressed, in
    order: a layer is made on two cores at once. At most `_QUEUED` batches of 1 MiB wait
    to be compressed, and what is compressed is written at the writer's next batch. When
    `out` hashes what it is given itself (the content store's BlobWriter:
    `running_digest`), that hash is the blob's digest and the compressed bytes are hashed
    once, not twice.
    """

    def __init__(
        self,
        out: BinaryIO,
        *,
        compression: Compression = Compression.GZIP,
        level: int | None = None,
        docker: bool = False,
    ) -> None:
        super().__init__()
        if level is None:
            level = _DEFAULT_LEVEL[compression]
        low, high = _LEVEL_RANGE[compression]
        if not low <= level <= high:
            raise CompressionError(
                f"{compression} compression level {level} is out of range {low}..{high}"
            )
        self._out = out
        self._media_type = layer_media_type(compression, docker=docker)
        self._compressor = _Compressor(compression, level)
        self._diff = hashlib.sha256()
        # Uncompressed, the blob is the tar: one hash serves as digest and diff-id.
        self._blob = self._diff if compression is Compression.NONE else hashlib.sha256()
        running = getattr(out, "running_digest", None)
        hashes_sha256 = getattr(out, "digest_algorithm", "") == "sha256"
        self._out_digest: Callable[[], Digest] | None = (
            running
            if callable(running) and hashes_sha256 and compression is not Compression.NONE
            else None
        )
        self._size = 0
        self._pending = bytearray()
        self._queue: queue.Queue[bytes | None] | None = None
        self._compressed: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stopped = False
        self.layer: Layer | None = None
        self._emit(self._compressor.start())

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        if self.layer is not None:
            raise ValueError("write to a finished LayerWriter")
        view = memoryview(data)
        self._pending += view
        if len(self._pending) >= _BATCH:
            self._drain()
        return view.nbytes

    def finish(self) -> Layer:
        """Flush the compressor and return the layer written (idempotent)."""
        if self.layer is None:
            self._drain()
            self._join()
            self._emit(self._compressor.finish())
            self._out.flush()
            if self._out_digest is not None:
                blob = self._out_digest()
            else:
                blob = Digest("sha256", self._blob.hexdigest())
            self.layer = Layer(
                Descriptor(self._media_type, blob, self._size),
                Digest("sha256", self._diff.hexdigest()),
            )
        return self.layer

    def close(self) -> None:
        if not self.closed:
            self.finish()
        super().close()

    def _commit(self) -> None:
        self.close()

    def _abandon(self) -> None:
        # A failed layer is abandoned: the caller discards the half-written blob.
        self._stopped = True
        with contextlib.suppress(BaseException):
            self._join()
        super().close()

    def _drain(self) -> None:
        if not self._pending:
            return
        chunk = bytes(self._pending)
        self._pending.clear()
        self._diff.update(chunk)
        if self._queue is None and len(chunk) < _BATCH:
            self._emit(self._compressor.compress(chunk))  # a small layer: no thread
            return
        if self._queue is None:
            self._queue = queue.Queue(maxsize=_QUEUED)
            self._worker = threading.Thread(
                target=self._compress_batches, name="layer-compress", daemon=True
            )
            self._worker.start()
        if self._error is not None:
            raise self._error
        self._emit_compressed()
        self._queue.put(chunk)

    def _emit_compressed(self) -> None:
        """Hash and write out, in order, what the compressing thread has finished."""
        while True:
            try:
                done = self._compressed.get_nowait()
            except queue.Empty:
                return
            self._emit(done)

    def _compress_batches(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if self._error is None and not self._stopped:
                try:
                    self._compressed.put(self._compressor.compress(chunk))
                except BaseException as exc:  # raised on the writer's thread
                    self._error = exc

    def _join(self) -> None:
        """Wait for the compressing thread to finish what it was given; its error, if any."""
        if self._queue is None or self._worker is None:
            return
        self._queue.put(None)
        self._worker.join()
        self._queue = self._worker = None
        if self._error is not None:
            raise self._error
        if not self._stopped:
            self._emit_compressed()

    def _emit(self, chunk: bytes) -> None:
        if chunk:
            self._out.write(chunk)
            if self._blob is not self._diff and self._out_digest is None:
                self._blob.update(chunk)
            self._size += len(chunk)


def detect_compression(head: bytes) -> Compression:
    """The compression of a blob from its first four bytes (anything unknown is plain tar)."""
    if head.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD
    if head.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    return Compression.NONE


class DecompressedLayer(io.RawIOBase):
    """The tar inside a layer blob; hashes what it returns, so the diff-id needs no extra pass.

    Corrupt or truncated compressed data raises CompressionError, not a bare OSError.
    """

    def __init__(self, inner: BinaryIO, compression: Compression) -> None:
        super().__init__()
        self._inner = inner
        self._hash = hashlib.sha256()
        self.compression = compression

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(view))
        except (OSError, EOFError, _ISAL_ERROR, zstandard.ZstdError) as exc:
            raise CompressionError(f"cannot decompress layer: {exc}") from exc
        view[: len(data)] = data
        self._hash.update(data)
        return len(data)

    def diff_id(self) -> str:
        """sha256 of everything read so far (the diff-id once read to the end)."""
        return f"sha256:{self._hash.hexdigest()}"


def open_decompressed(stream: BinaryIO) -> tuple[DecompressedLayer, Compression]:
    """Wrap `stream` so reads return the tar, detecting gzip/zstd/plain by magic bytes."""
    head = stream.read(4)
    compression = detect_compression(head)
    raw = io.BufferedReader(Prefixed(head, stream), buffer_size=_BATCH)
    inner: object = raw
    if compression is Compression.GZIP:
        inner = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
    elif compression is Compression.ZSTD:
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True, closefd=False
        )
        inner = io.BufferedReader(reader, buffer_size=_BATCH)  # type: ignore[arg-type]
    return DecompressedLayer(cast(BinaryIO, inner), compression), compression
