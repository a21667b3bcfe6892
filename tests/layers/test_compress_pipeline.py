"""LayerWriter past one batch: compressed on a thread of its own, the bytes, digest and
diff-id the same as written in one thread; an output that fails stops the writer."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from pathlib import Path

import pytest

from polybuild.errors import DigestMismatchError
from polybuild.image.content import ContentStore
from polybuild.layers.compress import LayerWriter
from polybuild.layers.compression import Compression

DATA = os.urandom(5 << 20) + b"x" * (3 << 20) + os.urandom(12345)


def write(out: io.RawIOBase | io.BufferedIOBase, piece: int = 100_000) -> LayerWriter:
    writer = LayerWriter(out)  # type: ignore[arg-type]
    for start in range(0, len(DATA), piece):
        writer.write(DATA[start : start + piece])
    writer.finish()
    return writer


def test_bytes_digest_and_diff_id(tmp_path: Path) -> None:
    memory = io.BytesIO()
    layer = write(memory).layer
    assert layer is not None
    blob = memory.getvalue()
    assert gzip.decompress(blob) == DATA
    assert layer.diff_id.hex == hashlib.sha256(DATA).hexdigest()
    assert layer.blob.hex == hashlib.sha256(blob).hexdigest()
    assert layer.descriptor.size == len(blob)
    # into the content store, whose own hash is the blob's digest: the same layer
    store = ContentStore(tmp_path / "store")
    with store.writer() as blob_writer:
        stored = write(blob_writer).layer  # type: ignore[arg-type]
    assert stored == layer and blob_writer.digest == layer.blob
    assert store.get(layer.blob) == blob


def test_a_failing_output_stops_the_writer(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    blob_writer = store.writer(size=1 << 20)  # far too small: the store refuses the rest
    with pytest.raises(DigestMismatchError):
        write(blob_writer)  # type: ignore[arg-type]


def test_uncompressed_layers_hash_once() -> None:
    memory = io.BytesIO()
    writer = LayerWriter(memory, compression=Compression.NONE)
    writer.write(DATA)
    layer = writer.finish()
    assert memory.getvalue() == DATA
    assert layer.blob == layer.diff_id
