"""OCI <-> Docker schema2 conversion of manifests and indexes (media types only, never content).

Converting changes the bytes (and so the digest) of manifests and indexes, because their
media types and their descriptors' media types change; configs and layers keep their bytes
and digests, only the media type on the descriptor pointing at them changes. Callers
re-encode with `encode_manifest` / `encode_index` and store the new bytes.

Docker schema2 has no field for annotations, `subject` or `artifactType`; converting a
manifest that uses them to Docker types raises ImageError instead of dropping them silently.
"""

from __future__ import annotations

from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest


def _target_type(media_type: str, docker: bool) -> str:
    return mt.to_docker(media_type) if docker else mt.to_oci(media_type)


def convert_descriptor(descriptor: Descriptor, *, docker: bool) -> Descriptor:
    """The descriptor with its media type in the Docker (or OCI) family."""
    media_type = _target_type(descriptor.media_type, docker)
    unconvertible = (
        mt.is_layer(media_type) or mt.is_config(media_type) or mt.is_manifest(media_type)
    )
    if docker and not mt.is_docker(media_type) and unconvertible:
        raise ImageError(f"{descriptor.media_type} has no Docker equivalent")
    if media_type == descriptor.media_type:
        return descriptor
    return Descriptor(
        media_type,
        descriptor.digest,
        descriptor.size,
        descriptor.platform,
        dict(descriptor.annotations),
        descriptor.urls,
        descriptor.artifact_type,
    )


def _refuse_oci_only(what: str, annotations: bool, subject: bool, artifact: bool) -> None:
    fields = [
        name
        for name, used in (
            ("annotations", annotations),
            ("subject", subject),
            ("artifactType", artifact),
        )
        if used
    ]
    if fields:
        raise ImageError(
            f"cannot convert the {what} to Docker media types: it uses {', '.join(fields)}, "
            "which Docker schema2 cannot carry",
            hint="keep OCI media types (oci-mediatypes=true)",
        )


def convert_manifest(manifest: Manifest, *, docker: bool) -> Manifest:
    """The manifest in Docker schema2 (`docker=True`) or OCI form; config/layers keep digests."""
    if docker:
        _refuse_oci_only(
            "image manifest",
            bool(manifest.annotations),
            manifest.subject is not None,
            bool(manifest.artifact_type),
        )
    return Manifest(
        config=convert_descriptor(manifest.config, docker=docker),
        layers=tuple(convert_descriptor(layer, docker=docker) for layer in manifest.layers),
        media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        annotations=dict(manifest.annotations),
        subject=manifest.subject,
        artifact_type=manifest.artifact_type,
    )


def convert_index(index: Index, *, docker: bool) -> Index:
    """The index as a Docker manifest list (`docker=True`) or an OCI index.

    Entries keep their digests: the caller must point them at converted manifests itself
    (their bytes change), this only rewrites the media types the entries carry.
    """
    if docker:
        _refuse_oci_only(
            "image index",
            bool(index.annotations),
            index.subject is not None,
            bool(index.artifact_type),
        )
    return Index(
        manifests=tuple(convert_descriptor(entry, docker=docker) for entry in index.manifests),
        media_type=mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX,
        annotations=dict(index.annotations),
        subject=index.subject,
        artifact_type=index.artifact_type,
    )


__all__ = ["convert_descriptor", "convert_index", "convert_manifest"]
