"""Attestation manifests as BuildKit's image writer makes them, and finding them in an index.

One manifest per attested image: its layers are the in-toto statements
(`application/vnd.in-toto+json`, annotated `in-toto.io/predicate-type`); with OCI artifacts
(BuildKit's default since compatibility version 30) the manifest has `artifactType`
`application/vnd.docker.attestation.manifest.v1+json`, the empty config and the image as its
`subject`; without, a config naming platform unknown/unknown and the layers as diff ids. The
index entry has platform unknown/unknown and the annotations `vnd.docker.reference.type:
attestation-manifest` and `vnd.docker.reference.digest: <image manifest digest>`; BuildKit
appends every attestation entry after all the images, in the images' order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from polybuild.attest import gojson
from polybuild.attest.intoto import Statement
from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Index, Manifest, Stored, is_attestation, parse_manifest
from polybuild.platforms import Platform

ARTIFACT_TYPE: Final = "application/vnd.docker.attestation.manifest.v1+json"
PREDICATE_TYPE_ANNOTATION: Final = "in-toto.io/predicate-type"
UNKNOWN_PLATFORM: Final = Platform("unknown", "unknown")
EMPTY_JSON: Final = b"{}"

__all__ = [
    "ARTIFACT_TYPE",
    "AttestationManifest",
    "attestation_manifest",
    "attestations_of",
    "image_entries",
    "is_attestation",
    "with_attestations",
]


@dataclass(frozen=True, slots=True)
class AttestationManifest:
    """An attestation manifest (its exact bytes), the blobs it points at (config and
    statements, by digest) and its entry for the index."""

    manifest: Stored[Manifest]
    blobs: Mapping[Digest, bytes] = field(hash=False)
    entry: Descriptor
    subject: Descriptor


def _descriptor(
    media_type: str, raw: bytes, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": media_type, "digest": str(Digest.of(raw)), "size": len(raw)}
    if annotations:
        out["annotations"] = dict(sorted(annotations.items()))
    return out


def _unknown_config(layers: Sequence[bytes]) -> bytes:
    """attestationsConfig: an image config for platform unknown/unknown (ocispecs.Image)."""
    return gojson.marshal(
        {
            "architecture": UNKNOWN_PLATFORM.architecture,
            "os": UNKNOWN_PLATFORM.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(raw)) for raw in layers]},
        }
    )


def attestation_manifest(
    subject: Descriptor,
    statements: Iterable[Statement],
    *,
    oci_types: bool = True,
    oci_artifact: bool = True,
) -> AttestationManifest:
    """The attestation manifest of the image `subject` (its manifest's descriptor) holding
    `statements`, in BuildKit's bytes (MarshalIndent). Docker media types are refused as
    BuildKit refuses them (`oci-mediatypes=false`)."""
    if not oci_types:
        raise ImageError(
            'cannot export attestations with "oci-mediatypes=false"',
            hint="attestation manifests need OCI media types",
        )
    manifest_type = mt.OCI_MANIFEST
    blobs: dict[Digest, bytes] = {}
    layers = []
    raws = []
    for statement in statements:
        raw = statement.to_json()
        raws.append(raw)
        blobs[Digest.of(raw)] = raw
        annotations = {PREDICATE_TYPE_ANNOTATION: statement.predicate_type}
        layers.append(_descriptor(mt.IN_TOTO, raw, annotations))
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": manifest_type}
    if oci_artifact:
        config = EMPTY_JSON
        document["artifactType"] = ARTIFACT_TYPE
        document["config"] = {**_descriptor(mt.OCI_EMPTY, config), "data": "e30="}
    else:
        config = _unknown_config(raws)
        document["config"] = _descriptor(mt.OCI_CONFIG, config)
    blobs[Digest.of(config)] = config
    document["layers"] = layers
    if oci_artifact:
        document["subject"] = {
            "mediaType": subject.media_type,
            "digest": str(subject.digest),
            "size": subject.size,
        }
    stored = parse_manifest(gojson.marshal_indent(document), manifest_type)
    entry = Descriptor(
        manifest_type,
        stored.digest,
        stored.size,
        UNKNOWN_PLATFORM,
        {
            mt.ANNOTATION_DOCKER_REFERENCE_DIGEST: str(subject.digest),
            mt.ANNOTATION_DOCKER_REFERENCE_TYPE: mt.ATTESTATION_MANIFEST,
        },
    )
    return AttestationManifest(stored, blobs, entry, subject)


def with_attestations(
    images: Sequence[Descriptor], attestations: Iterable[AttestationManifest]
) -> tuple[Descriptor, ...]:
    """An index's entries: the images, then each image's attestation entries in the images'
    order (BuildKit's order); an attestation of no listed image is refused."""
    by_subject: dict[Digest, list[Descriptor]] = {}
    for att in attestations:
        by_subject.setdefault(att.subject.digest, []).append(att.entry)
    known = {d.digest for d in images}
    stray = [str(d) for d in by_subject if d not in known]
    if stray:
        raise ImageError(f"attestations of images not in the index: {', '.join(stray)}")
    return (*images, *(e for d in images for e in by_subject.get(d.digest, [])))


def image_entries(index: Index) -> tuple[Descriptor, ...]:
    """The index's entries that are not attestation manifests."""
    return tuple(d for d in index.manifests if not is_attestation(d))


def attestations_of(index: Index, manifest: Digest) -> tuple[Descriptor, ...]:
    """The attestation manifests in `index` that refer to the image manifest `manifest`."""
    return tuple(
        d
        for d in index.manifests
        if is_attestation(d)
        and d.annotations.get(mt.ANNOTATION_DOCKER_REFERENCE_DIGEST) == str(manifest)
    )
