"""Images: OCI/Docker types with their exact bytes, the content store, layouts and the image store.

>>> from polybuild.image import ImageStore, reference
>>> str(reference.parse("busybox"))
'docker.io/library/busybox:latest'
"""

from __future__ import annotations

from polybuild.image import mediatypes, reference
from polybuild.image.config import (
    ContainerConfig,
    Healthcheck,
    History,
    ImageConfig,
    encode_config,
    parse_config,
)
from polybuild.image.content import BlobReader, BlobWriter, ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest, InvalidDigestError
from polybuild.image.layer import Layer
from polybuild.image.manifest import (
    Index,
    Manifest,
    Stored,
    encode_index,
    encode_manifest,
    parse_index,
    parse_manifest,
    parse_manifest_or_index,
)
from polybuild.image.platform_image import ExportSource, PlatformImage
from polybuild.image.reference import Reference
from polybuild.image.select import NoMatchingPlatformError, Selected, select_manifest
from polybuild.image.store import ImageRecord, ImageStore, ImageSummary, Removal

__all__ = [
    "BlobReader",
    "BlobWriter",
    "ContainerConfig",
    "ContentStore",
    "Descriptor",
    "Digest",
    "ExportSource",
    "Healthcheck",
    "History",
    "ImageConfig",
    "ImageRecord",
    "ImageStore",
    "ImageSummary",
    "Index",
    "InvalidDigestError",
    "Layer",
    "Manifest",
    "NoMatchingPlatformError",
    "PlatformImage",
    "Reference",
    "Removal",
    "Selected",
    "Stored",
    "encode_config",
    "encode_index",
    "encode_manifest",
    "mediatypes",
    "parse_config",
    "parse_index",
    "parse_manifest",
    "parse_manifest_or_index",
    "reference",
    "select_manifest",
]
