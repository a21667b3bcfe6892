"""imagetools: inspect images in registries and combine manifests into multi-platform indexes."""

from __future__ import annotations

from polybuild.imagetools.combine import Combined, Source, combine_index
from polybuild.imagetools.create import combine, create
from polybuild.imagetools.inspect import Inspection, formatted, human, inspect
from polybuild.imagetools.sources import SourceSpec, parse_annotations, parse_source

__all__ = [
    "Combined",
    "Inspection",
    "Source",
    "SourceSpec",
    "combine",
    "combine_index",
    "create",
    "formatted",
    "human",
    "inspect",
    "parse_annotations",
    "parse_source",
]
