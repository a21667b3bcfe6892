"""One-call layer builders: a tree, an overlay upper dir or a tree diff to a compressed blob."""

from __future__ import annotations

from collections.abc import Callable
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

__all__ = ["changes_layer", "directory_layer", "upper_layer"]


def directory_layer(
    root: Path,
    out: BinaryIO,
    *,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    docker: bool = False,
    source_date_epoch: int | None = None,
) -> Layer:
    """Write all of `root` as one compressed layer into `out` (base rootfs, import)."""
    return _compressed(
        out,
        compression,
        level,
        docker,
        lambda w: write_directory_tar(root, w, source_date_epoch=source_date_epoch),
    )


def upper_layer(
    upper: Path,
    out: BinaryIO,
    *,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    docker: bool = False,
    source_date_epoch: int | None = None,
) -> Layer:
    """Write an overlayfs upper directory (unmounted) as a compressed layer with whiteouts."""
    return _compressed(
        out,
        compression,
        level,
        docker,
        lambda w: write_upper_tar(upper, w, source_date_epoch=source_date_epoch),
    )


def changes_layer(
    lower: Path,
    new: Path,
    out: BinaryIO,
    *,
    compression: Compression = Compression.GZIP,
    level: int | None = None,
    docker: bool = False,
    source_date_epoch: int | None = None,
) -> Layer:
    """Write the difference from tree `lower` to tree `new` as a compressed layer."""
    changes = compute_changes(lower, new)
    return _compressed(
        out, compression, level, docker,
        lambda w: write_changes_tar(new, changes, w, source_date_epoch=source_date_epoch),
    )  # fmt: skip


def _compressed(
    out: BinaryIO,
    compression: Compression,
    level: int | None,
    docker: bool,
    write: Callable[[LayerWriter], None],
) -> Layer:
    """Run `write` into a compressing writer over `out`; the layer it wrote."""
    with LayerWriter(out, compression=compression, level=level, docker=docker) as writer:
        write(writer)
    return writer.finish()
