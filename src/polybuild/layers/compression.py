"""How a layer blob is compressed: the value alone, without the compressors behind it."""

from __future__ import annotations

import enum


class Compression(enum.StrEnum):
    """How a layer blob is compressed."""

    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"
