"""imagetools: inspect images in registries and combine manifests into multi-platform indexes."""

from __future__ import annotations

from polybuild.imagetools.create import Source, collect_sources, combine_index, create
from polybuild.imagetools.inspect import Inspection, formatted, human, inspect

__all__ = [
    "Inspection",
    "Source",
    "collect_sources",
    "combine_index",
    "create",
    "formatted",
    "human",
    "inspect",
]
