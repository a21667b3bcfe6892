"""Manifests and indexes as typed values, kept with the exact bytes their digest is taken over."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image._wire import IndexJSON, ManifestJSON, decode, encode
from polybuild.image.descriptor import Descriptor, descriptor_from_wire, descriptor_to_wire
from polybuild.image.digest import Digest
from polybuild.platforms import Platform

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest (OCI or Docker schema2): one config and its layers, bottom first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mt.OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    subject: Descriptor | None = None
    artifact_type: str = ""


@dataclass(frozen=True, slots=True)
class Index:
    """An image index or Docker manifest list: one descriptor per platform image."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    subject: Descriptor | None = None
    artifact_type: str = ""


@dataclass(frozen=True, slots=True)
class Stored(Generic[T]):
    """A parsed value with the exact bytes it was read from (or serialised to) and their digest.

    The digest is always of `raw`, never of a re-serialisation, so it matches what is stored
    and pushed.
    """

    value: T
    raw: bytes
    media_type: str
    digest: Digest

    @property
    def size(self) -> int:
        return len(self.raw)

    def descriptor(
        self,
        platform: Platform | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """A descriptor pointing at these bytes."""
        return Descriptor(
            self.media_type, self.digest, len(self.raw), platform, dict(annotations or {})
        )


def _stored(value: T, raw: bytes, media_type: str) -> Stored[T]:
    return Stored(value, raw, media_type, Digest.of(raw))


def _media_type(document: str, declared: str, expected: str | None, allowed: frozenset[str]) -> str:
    """The media type of a document: what it declares, checked against what pointed at it."""
    media_type = declared or expected or ""
    if declared and expected and declared != expected:
        raise ImageError(
            f"invalid {document}: it declares media type {declared!r} "
            f"but its descriptor says {expected!r}"
        )
    if media_type in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED):
        raise ImageError(
            "Docker image manifest schema 1 is not supported",
            hint="re-push the image with a current Docker or BuildKit to get schema 2 / OCI",
        )
    if media_type and media_type not in allowed:
        raise ImageError(f"invalid {document}: unexpected media type {media_type!r}")
    return media_type


def parse_manifest(raw: bytes, media_type: str | None = None) -> Stored[Manifest]:
    """Parse an image manifest; `media_type` is what its descriptor or the registry said."""
    wire = decode(raw, ManifestJSON, "image manifest")
    if wire.manifests is not None:
        raise ImageError("invalid image manifest: it has `manifests`, so it is an index")
    kind = _media_type("image manifest", wire.media_type, media_type, mt.MANIFEST_TYPES)
    if wire.schema_version != 2:
        raise ImageError(f"invalid image manifest: schemaVersion {wire.schema_version}, not 2")
    if wire.config is None:
        raise ImageError("invalid image manifest: it has no `config`")
    manifest = Manifest(
        config=descriptor_from_wire(wire.config, "image manifest config descriptor"),
        layers=tuple(
            descriptor_from_wire(layer, f"image manifest layer {n}")
            for n, layer in enumerate(wire.layers or ())
        ),
        media_type=kind or mt.OCI_MANIFEST,
        annotations=dict(wire.annotations or {}),
        subject=descriptor_from_wire(wire.subject, "subject") if wire.subject else None,
        artifact_type=wire.artifact_type,
    )
    return _stored(manifest, raw, manifest.media_type)


def parse_index(raw: bytes, media_type: str | None = None) -> Stored[Index]:
    """Parse an image index or Docker manifest list."""
    wire = decode(raw, IndexJSON, "image index")
    kind = _media_type("image index", wire.media_type, media_type, mt.INDEX_TYPES)
    if wire.schema_version != 2:
        raise ImageError(f"invalid image index: schemaVersion {wire.schema_version}, not 2")
    if wire.manifests is None:
        raise ImageError("invalid image index: it has no `manifests`")
    index = Index(
        manifests=tuple(
            descriptor_from_wire(entry, f"image index entry {n}")
            for n, entry in enumerate(wire.manifests)
        ),
        media_type=kind or mt.OCI_INDEX,
        annotations=dict(wire.annotations or {}),
        subject=descriptor_from_wire(wire.subject, "subject") if wire.subject else None,
        artifact_type=wire.artifact_type,
    )
    return _stored(index, raw, index.media_type)


def parse_manifest_or_index(
    raw: bytes, media_type: str | None = None
) -> Stored[Manifest] | Stored[Index]:
    """Parse either kind, deciding by the media type given, declared, or by the fields present."""
    if media_type and mt.is_index(media_type):
        return parse_index(raw, media_type)
    if media_type and mt.is_manifest(media_type):
        return parse_manifest(raw, media_type)
    probe = decode(raw, ManifestJSON, "image manifest or index")
    if mt.is_index(probe.media_type) or (not probe.media_type and probe.manifests is not None):
        return parse_index(raw, media_type)
    return parse_manifest(raw, media_type)


def encode_manifest(manifest: Manifest) -> Stored[Manifest]:
    """Serialise a new manifest canonically (compact JSON, Go field order)."""
    wire = ManifestJSON(
        schema_version=2,
        media_type=manifest.media_type,
        artifact_type=manifest.artifact_type,
        config=descriptor_to_wire(manifest.config),
        layers=[descriptor_to_wire(layer) for layer in manifest.layers],
        subject=descriptor_to_wire(manifest.subject) if manifest.subject else None,
        annotations=dict(manifest.annotations) or None,
    )
    return _stored(manifest, encode(wire), manifest.media_type)


def encode_index(index: Index) -> Stored[Index]:
    """Serialise a new index canonically (compact JSON, Go field order)."""
    wire = IndexJSON(
        schema_version=2,
        media_type=index.media_type,
        artifact_type=index.artifact_type,
        manifests=[descriptor_to_wire(entry) for entry in index.manifests],
        subject=descriptor_to_wire(index.subject) if index.subject else None,
        annotations=dict(index.annotations) or None,
    )
    return _stored(index, encode(wire), index.media_type)


def is_attestation(descriptor: Descriptor) -> bool:
    """An index entry BuildKit adds for provenance/SBOM, not a runnable image."""
    return (
        descriptor.annotations.get(mt.ANNOTATION_DOCKER_REFERENCE_TYPE) == mt.ATTESTATION_MANIFEST
    )
