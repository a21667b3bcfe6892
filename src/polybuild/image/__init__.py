"""Images: OCI/Docker types with their exact bytes, the content store, layouts and the image store.

>>> from polybuild.image import ImageStore, reference
>>> str(reference.parse("busybox"))
'docker.io/library/busybox:latest'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each name is imported from its module when first used: a module that needs one light part
# (`polybuild.image.reference`, `.digest`, `.descriptor`) runs this file first, and must not
# pay for the image store, its file locks and the msgspec codecs (0.1 s of imports) on a build
# that never opens the store, as one a BuildKit daemon writes.
_MODULES = {
    "BlobReader": "polybuild.image.content",
    "BlobWriter": "polybuild.image.content",
    "ContainerConfig": "polybuild.image.config",
    "ContentStore": "polybuild.image.content",
    "Descriptor": "polybuild.image.descriptor",
    "Digest": "polybuild.image.digest",
    "ExportSource": "polybuild.image.platform_image",
    "Healthcheck": "polybuild.image.config",
    "History": "polybuild.image.config",
    "ImageConfig": "polybuild.image.config",
    "ImageRecord": "polybuild.image.store",
    "ImageStore": "polybuild.image.store",
    "ImageSummary": "polybuild.image.store",
    "Index": "polybuild.image.manifest",
    "InvalidDigestError": "polybuild.image.digest",
    "Layer": "polybuild.image.layer",
    "Manifest": "polybuild.image.manifest",
    "NoMatchingPlatformError": "polybuild.image.select",
    "PlatformImage": "polybuild.image.platform_image",
    "Reference": "polybuild.image.reference",
    "Removal": "polybuild.image.store",
    "Selected": "polybuild.image.select",
    "Stored": "polybuild.image.manifest",
    "encode_config": "polybuild.image.config",
    "encode_index": "polybuild.image.manifest",
    "encode_manifest": "polybuild.image.manifest",
    "parse_config": "polybuild.image.config",
    "parse_index": "polybuild.image.manifest",
    "parse_manifest": "polybuild.image.manifest",
    "parse_manifest_or_index": "polybuild.image.manifest",
    "select_manifest": "polybuild.image.select",
}
_SUBMODULES = ("mediatypes", "reference")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
