"""The build graph: ops with platforms and content digests."""

from __future__ import annotations

from polybuild.graph.ops import (
    Copy,
    Exec,
    ImageSource,
    InlineFile,
    InlineSource,
    LocalSource,
    Merge,
    Mkdir,
    Mount,
    Op,
    canonical_json,
    walk,
)

__all__ = [
    "Copy",
    "Exec",
    "ImageSource",
    "InlineFile",
    "InlineSource",
    "LocalSource",
    "Merge",
    "Mkdir",
    "Mount",
    "Op",
    "canonical_json",
    "walk",
]
