"""One-call layer builders: a tree, an overlay upper dir or a tree diff to a compressed blob."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from polybuild.layers.compress import Compression, LayerDescriptor, LayerWriter
from polybuild.layers.tarwriter import (
    compute_changes,
    write_changes_tar,
    write_directory_tar,
    write_upper_tar,
)

__all__ = ["changes_layer", "directory_layer", "upper_layer"]


def directory_layer(
    root: Path,
    out: BinaryIO,
    *,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    docker: bool = False,
    source_date_epoch: int | None = None,
) -> LayerDescriptor:
    """Write all of `root` as one compressed layer into `out` (base rootfs, import)."""
    with LayerWriter(out, compression=compression, level=level, docker=docker) as writer:
        write_directory_tar(root, writer, source_date_epoch=source_date_epoch)
    return writer.finish()


def upper_layer(
    upper: Path,
    out: BinaryIO,
    *,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    docker: bool = False,
    source_date_epoch: int | None = None,
) -> LayerDescriptor:
    """Write an overlayfs upper directory (unmounted) as a compressed layer with whiteouts."""
    with LayerWriter(out, compression=compression, level=level, docker=docker) as writer:
        write_upper_tar(upper, writer, source_date_epoch=source_date_epoch)
    return writer.finish()


def changes_layer(
    lower: Path,
    new: Path,
    out: BinaryIO,
    *,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    docker: bool = False,
    source_date_epoch: int | None = None,
) -> LayerDescriptor:
    """Write the difference from tree `lower` to tree `new` as a compressed layer."""
    changes = compute_changes(lower, new)
    with LayerWriter(out, compression=compression, level=level, docker=docker) as writer:
        write_changes_tar(new, changes, writer, source_date_epoch=source_date_epoch)
    return writer.finish()
