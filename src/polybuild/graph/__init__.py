"""The build graph: ops with platforms and content digests, and the image config they produce."""

from __future__ import annotations

from polybuild.graph.config import HealthConfig, HistoryEntry, ImageConfig
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
    "HealthConfig",
    "HistoryEntry",
    "ImageConfig",
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
