"""Re-compressing a stored layer blob (gzip <-> zstd <-> none) without changing its tar."""

from __future__ import annotations

from dataclasses import replace
from typing import BinaryIO, cast

from polybuild.errors import DigestMismatchError, ImageError
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.layers import Compression, LayerWriter, open_decompressed

_CHUNK = 1 << 20


def recompress_layer(
    content: ContentStore,
    layer: Descriptor,
    diff_id: Digest,
    compression: Compression,
    *,
    level: int | None = None,
    docker: bool = False,
) -> Descriptor:
    """Store `layer` re-compressed as `compression`; returns the new blob's descriptor.

    The tar inside is copied byte for byte, so the diff-id (and the image config) stay the
    same; that is checked, and a layer whose tar does not hash to `diff_id` is refused.
    Output is deterministic: the same layer and settings always give the same digest.
    """
    with content.open(layer.digest) as blob, content.writer() as out:
        tar, _ = open_decompressed(cast(BinaryIO, blob))
        writer = LayerWriter(
            cast(BinaryIO, out), compression=compression, level=level, docker=docker
        )
        with writer:
            for chunk in iter(lambda: tar.read(_CHUNK), b""):
                writer.write(chunk)
        result = writer.finish()
        if result.diff_id != diff_id:
            out.abort()
            raise DigestMismatchError(
                f"layer {layer.digest} holds a tar with diff-id {result.diff_id}, "
                f"but the image config says {diff_id}"
            )
    if out.digest != result.blob:
        raise ImageError(f"re-compressed layer {layer.digest} was not stored")
    return replace(result.descriptor, annotations=dict(layer.annotations), urls=layer.urls)


__all__ = ["recompress_layer"]
