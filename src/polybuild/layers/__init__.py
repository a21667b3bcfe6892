"""Container image layers: deterministic tars with whiteouts, compression, and safe unpacking.

Writing: `directory_layer`, `upper_layer` and `changes_layer` turn a tree, an overlayfs
upper directory or a tree diff into one compressed blob and its `polybuild.image.Layer`
(blob descriptor and diff-id), in a single streaming pass.
Reading: `unpack_layer` applies a gzip/zstd/plain layer onto a root directory as if
chrooted there, in MERGED mode (whiteouts delete) or OVERLAY mode (whiteouts become
overlayfs char 0/0 devices and opaque xattrs).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polybuild.layers.compress import (
        CompressionError,
        DecompressedLayer,
        LayerWriter,
        compression_for_media_type,
        layer_media_type,
        open_decompressed,
    )
    from polybuild.layers.compression import Compression
    from polybuild.layers.layer import LayerFormat, changes_layer, directory_layer, upper_layer
    from polybuild.layers.tarwriter import (
        Change,
        ChangeKind,
        LayerWriteError,
        compute_changes,
        write_changes_tar,
        write_directory_tar,
        write_upper_tar,
    )
    from polybuild.layers.unpack import (
        SkippedEntry,
        UnpackError,
        UnpackMode,
        UnpackResult,
        unpack_layer,
    )

# Each name is imported from its module when first used: a build that only names a
# compression (`-o compression=zstd` for a BuildKit daemon) must not load the compressors,
# the tar writers and the unpacker (30 ms of imports).
_MODULES = {
    "Change": "polybuild.layers.tarwriter",
    "ChangeKind": "polybuild.layers.tarwriter",
    "Compression": "polybuild.layers.compression",
    "CompressionError": "polybuild.layers.compress",
    "DecompressedLayer": "polybuild.layers.compress",
    "LayerFormat": "polybuild.layers.layer",
    "LayerWriteError": "polybuild.layers.tarwriter",
    "LayerWriter": "polybuild.layers.compress",
    "SkippedEntry": "polybuild.layers.unpack",
    "UnpackError": "polybuild.layers.unpack",
    "UnpackMode": "polybuild.layers.unpack",
    "UnpackResult": "polybuild.layers.unpack",
    "changes_layer": "polybuild.layers.layer",
    "compression_for_media_type": "polybuild.layers.compress",
    "compute_changes": "polybuild.layers.tarwriter",
    "directory_layer": "polybuild.layers.layer",
    "layer_media_type": "polybuild.layers.compress",
    "open_decompressed": "polybuild.layers.compress",
    "unpack_layer": "polybuild.layers.unpack",
    "upper_layer": "polybuild.layers.layer",
    "write_changes_tar": "polybuild.layers.tarwriter",
    "write_directory_tar": "polybuild.layers.tarwriter",
    "write_upper_tar": "polybuild.layers.tarwriter",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Change",
    "ChangeKind",
    "Compression",
    "CompressionError",
    "DecompressedLayer",
    "LayerFormat",
    "LayerWriteError",
    "LayerWriter",
    "SkippedEntry",
    "UnpackError",
    "UnpackMode",
    "UnpackResult",
    "changes_layer",
    "compression_for_media_type",
    "compute_changes",
    "directory_layer",
    "layer_media_type",
    "open_decompressed",
    "unpack_layer",
    "upper_layer",
    "write_changes_tar",
    "write_directory_tar",
    "write_upper_tar",
]
