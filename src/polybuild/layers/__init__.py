"""Container image layers: deterministic tars with whiteouts, compression, and safe unpacking.

Writing: `directory_layer`, `upper_layer` and `changes_layer` turn a tree, an overlayfs
upper directory or a tree diff into one compressed blob and its `polybuild.image.Layer`
(blob descriptor and diff-id), in a single streaming pass.
Reading: `unpack_layer` applies a gzip/zstd/plain layer onto a root directory as if
chrooted there, in MERGED mode (whiteouts delete) or OVERLAY mode (whiteouts become
overlayfs char 0/0 devices and opaque xattrs).
"""

from polybuild.layers.compress import (
    Compression,
    CompressionError,
    DecompressedLayer,
    LayerWriter,
    compression_for_media_type,
    layer_media_type,
    open_decompressed,
)
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
