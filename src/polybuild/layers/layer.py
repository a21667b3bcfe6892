"""One-call layer builders: a tree, an overlay upper dir or a tree diff to a compressed blob."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polybuild.image.layer import Layer
from polybuild.layers.compress import Compression, LayerWriter
from polybuild.layers.tarwriter import (
    compute_changes,
    write_changes_tar,
    write_directory_tar,
    write_upper_tar,
)

__all__ = ["DEFAULT_FORMAT", "LayerFormat", "changes_layer", "directory_layer", "upper_layer"]


@dataclass(frozen=True, slots=True)
class LayerFormat:
    """What decides a layer blob's bytes besides its files: the compression (and level), the
    media type family (Docker or OCI) and the SOURCE_DATE_EPOCH newer mtimes are clamped to."""

    compression: Compression = Compression.GZIP
    level: int | None = None
    docker: bool = False
    source_date_epoch: int | None = None


DEFAULT_FORMAT = LayerFormat()  # gzip at its default level, OCI media types, mtimes as they are


def directory_layer(root: Path, out: BinaryIO, layer_format: LayerFormat = DEFAULT_FORMAT) -> Layer:
    """Write all of `root` as one compressed layer into `out` (base rootfs, import)."""
    epoch = layer_format.source_date_epoch
    return _compressed(
        out, layer_format, lambda w: write_directory_tar(root, w, source_date_epoch=epoch)
    )


def upper_layer(upper: Path, out: BinaryIO, layer_format: LayerFormat = DEFAULT_FORMAT) -> Layer:
    """Write an overlayfs upper directory (unmounted) as a compressed layer with whiteouts."""
    epoch = layer_format.source_date_epoch
    return _compressed(
        out, layer_format, lambda w: write_upper_tar(upper, w, source_date_epoch=epoch)
    )


def changes_layer(
    lower: Path, new: Path, out: BinaryIO, layer_format: LayerFormat = DEFAULT_FORMAT
) -> Layer:
    """Write the difference from tree `lower` to tree `new` as a compressed layer."""
    changes = compute_changes(lower, new)
    epoch = layer_format.source_date_epoch
    return _compressed(
        out, layer_format, lambda w: write_changes_tar(new, changes, w, source_date_epoch=epoch)
    )


def _compressed(
    out: BinaryIO, layer_format: LayerFormat, write: Callable[[LayerWriter], None]
) -> Layer:
    """Run `write` into a compressing writer over `out`; the layer it wrote."""
    with LayerWriter(
        out,
        compression=layer_format.compression,
        level=layer_format.level,
        docker=layer_format.docker,
    ) as writer:
        write(writer)
    return writer.finish()
