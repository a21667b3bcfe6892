"""Converting manifests and indexes from OCI to Docker schema2 media types (oci-mediatypes=false).

Only descriptors' media types change: configs and layers keep their bytes and digests, while
each manifest and index is re-encoded and so gets a new digest.
"""

from __future__ import annotations

from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest


def _docker_descriptor(descriptor: Descriptor) -> Descriptor:
    return Descriptor(
        mt.to_docker(descriptor.media_type),
        descriptor.digest,
        descriptor.size,
        descriptor.platform,
        dict(descriptor.annotations),
        descriptor.urls,
    )


def to_docker_manifest(manifest: Manifest) -> Manifest:
    """The Docker schema2 form of an image manifest (schema2 has no annotations or subject)."""
    return Manifest(
        config=_docker_descriptor(manifest.config),
        layers=tuple(_docker_descriptor(layer) for layer in manifest.layers),
        media_type=mt.DOCKER_MANIFEST,
    )


def to_docker_index(index: Index, entries: tuple[Descriptor, ...]) -> Index:
    """A Docker manifest list of `entries` (already pointing at converted manifests)."""
    return Index(
        manifests=tuple(_docker_descriptor(e) for e in entries),
        media_type=mt.DOCKER_MANIFEST_LIST,
    )


def is_convertible(manifest: Manifest) -> bool:
    """True when every blob has a Docker media type (attestations, artifacts do not)."""
    types = [manifest.config.media_type, *(layer.media_type for layer in manifest.layers)]
    return all(mt.is_config(t) or mt.is_layer(t) for t in types)
