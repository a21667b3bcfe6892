"""Single-pass compression: digests, diff-ids, fixed gzip header, magic detection, media types."""

from __future__ import annotations

import gzip
import hashlib
import io
import os

import pytest
import zstandard

from polybuild.layers import (
    Compression,
    CompressionError,
    LayerWriter,
    compression_for_media_type,
    layer_media_type,
    open_decompressed,
)

# Compressible and incompressible parts, larger than one 1 MiB batch.
PAYLOAD = b"layer " * 400_000 + os.urandom(1_500_000)


def _write(compression: Compression, level: int | None = None) -> tuple[bytes, LayerWriter]:
    out = io.BytesIO()
    with LayerWriter(out, compression=compression, level=level) as writer:
        for start in range(0, len(PAYLOAD), 100_003):
            writer.write(PAYLOAD[start : start + 100_003])
    return out.getvalue(), writer


@pytest.mark.parametrize("compression", list(Compression))
def test_one_pass_gives_blob_digest_size_and_diff_id(compression: Compression) -> None:
    blob, writer = _write(compression)
    layer = writer.finish()
    desc = layer.descriptor
    assert str(desc.digest) == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert desc.size == len(blob)
    assert str(layer.diff_id) == "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    assert desc.media_type == layer_media_type(compression)
    reader, detected = open_decompressed(io.BytesIO(blob))
    assert detected is reader.compression is compression
    assert reader.read() == PAYLOAD
    assert reader.diff_id() == str(layer.diff_id)


def test_gzip_has_a_fixed_header_and_standard_framing() -> None:
    blob, _ = _write(Compression.GZIP)
    # deflate, no FNAME, mtime 0, OS unknown: nothing from the host or the clock.
    assert blob[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    assert gzip.decompress(blob) == PAYLOAD


def test_zstd_is_a_standard_frame() -> None:
    blob, _ = _write(Compression.ZSTD)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob))
    assert reader.read() == PAYLOAD


def test_levels_change_output_and_are_checked() -> None:
    fast, _ = _write(Compression.GZIP, level=0)
    small, _ = _write(Compression.GZIP, level=3)
    assert len(small) < len(fast)
    with pytest.raises(CompressionError, match="out of range"):
        LayerWriter(io.BytesIO(), compression=Compression.GZIP, level=9)
    with pytest.raises(CompressionError, match="out of range"):
        LayerWriter(io.BytesIO(), compression=Compression.ZSTD, level=0)


def test_media_types() -> None:
    assert layer_media_type(Compression.GZIP) == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert layer_media_type(Compression.ZSTD) == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert layer_media_type(Compression.NONE) == "application/vnd.oci.image.layer.v1.tar"
    docker_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert layer_media_type(Compression.GZIP, docker=True) == docker_gzip
    assert compression_for_media_type(docker_gzip) is Compression.GZIP
    assert (
        compression_for_media_type("application/vnd.oci.image.layer.v1.tar+zstd")
        is Compression.ZSTD
    )
    assert compression_for_media_type("application/vnd.oci.image.layer.v1.tar") is (
        Compression.NONE
    )
    with pytest.raises(CompressionError):
        compression_for_media_type("application/vnd.oci.image.config.v1+json")


def test_writing_after_finish_is_an_error() -> None:
    writer = LayerWriter(io.BytesIO())
    writer.finish()
    with pytest.raises(ValueError):
        writer.write(b"late")
