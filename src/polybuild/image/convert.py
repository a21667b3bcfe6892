"""Converting descriptors, manifests and indexes between OCI and Docker schema2 media types.

Only descriptors' media types change (oci-mediatypes=false, or back): configs and layers
keep their bytes and digests, while each manifest and index is re-encoded and so gets a
new digest. Docker schema2 has no `artifactType`, so a Docker descriptor never carries one.
"""

from __future__ import annotations

from dataclasses import replace

from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest


def convert_descriptor(descriptor: Descriptor, *, docker: bool) -> Descriptor:
    """The descriptor with its media type in the Docker (or OCI) family; digest unchanged.

    Types the other family lacks are kept; the descriptor itself is returned when nothing
    changes.
    """
    if docker:
        media_type, artifact_type = mt.to_docker(descriptor.media_type), ""
    else:
        media_type, artifact_type = mt.to_oci(descriptor.media_type), descriptor.artifact_type
    if (media_type, artifact_type) == (descriptor.media_type, descriptor.artifact_type):
        return descriptor
    return replace(descriptor, media_type=media_type, artifact_type=artifact_type)


def to_docker_manifest(manifest: Manifest) -> Manifest:
    """The Docker schema2 form of an image manifest (schema2 has no annotations or subject)."""
    return Manifest(
        config=convert_descriptor(manifest.config, docker=True),
        layers=tuple(convert_descriptor(layer, docker=True) for layer in manifest.layers),
        media_type=mt.DOCKER_MANIFEST,
    )


def to_docker_index(index: Index, entries: tuple[Descriptor, ...]) -> Index:
    """A Docker manifest list of `entries` (already pointing at converted manifests)."""
    return Index(
        manifests=tuple(convert_descriptor(e, docker=True) for e in entries),
        media_type=mt.DOCKER_MANIFEST_LIST,
    )


def is_convertible(manifest: Manifest) -> bool:
    """True when every blob has a Docker media type (attestations, artifacts do not)."""
    types = [manifest.config.media_type, *(layer.media_type for layer in manifest.layers)]
    return all(mt.is_config(t) or mt.is_layer(t) for t in types)
