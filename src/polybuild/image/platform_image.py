"""A build's result as image values: one platform's stored image, and all of a build's."""

from __future__ import annotations

from dataclasses import dataclass

from polybuild.image.config import ImageConfig
from polybuild.image.content import ContentStore
from polybuild.image.manifest import Manifest, Stored
from polybuild.platforms import Platform


@dataclass(frozen=True, slots=True)
class PlatformImage:
    """One platform's built image: its manifest and config, all blobs in the content store."""

    platform: Platform
    manifest: Stored[Manifest]
    config: Stored[ImageConfig]


@dataclass(frozen=True, slots=True)
class Predicate:
    """An attestation about one platform's image before it has a subject: its in-toto
    predicate type and JSON bytes, whether only an index may carry it (buildx's default
    provenance: `inline-only`), and its file name in a local or tar export."""

    platform: Platform
    predicate_type: str
    body: bytes
    inline_only: bool = False
    filename: str = ""


@dataclass(frozen=True, slots=True)
class ExportSource:
    """A build result to export: one image per target platform, in the order to list them."""

    content: ContentStore
    platforms: tuple[PlatformImage, ...]
    # An index even for one platform (BUILDKIT_MULTI_PLATFORM=1, or several nodes: buildx)
    multi_platform: bool = False
    # The attestations each output may carry (exporters/attach decides which it does)
    predicates: tuple[Predicate, ...] = ()
