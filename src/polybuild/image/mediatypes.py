"""OCI and Docker schema2 media types, what each names, and the mapping between them."""

from __future__ import annotations

from typing import Final

# OCI image-spec v1.1
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"
OCI_LAYOUT_VERSION: Final = "1.0.0"

# Docker image manifest v2, schema 2
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD: Final = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_LAYER_FOREIGN: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
# schema 1 is refused; named so the error can say what it saw
DOCKER_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# BuildKit attestations
IN_TOTO: Final = "application/vnd.in-toto+json"

# Annotations
ANNOTATION_REF_NAME: Final = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME: Final = "io.containerd.image.name"
ANNOTATION_CREATED: Final = "org.opencontainers.image.created"
ANNOTATION_DOCKER_REFERENCE_TYPE: Final = "vnd.docker.reference.type"
ANNOTATION_DOCKER_REFERENCE_DIGEST: Final = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST: Final = "attestation-manifest"

INDEX_TYPES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_TYPES: Final = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES: Final = frozenset(
    {
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_LAYER_NONDIST,
        OCI_LAYER_NONDIST_GZIP,
        OCI_LAYER_NONDIST_ZSTD,
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
        DOCKER_LAYER_ZSTD,
        DOCKER_LAYER_FOREIGN,
    }
)
NONDISTRIBUTABLE_TYPES: Final = frozenset(
    {OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD, DOCKER_LAYER_FOREIGN}
)

_DOCKER_TO_OCI: Final = {
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER: OCI_LAYER,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_ZSTD: OCI_LAYER_ZSTD,
    DOCKER_LAYER_FOREIGN: OCI_LAYER_NONDIST_GZIP,
}
_OCI_TO_DOCKER: Final = {oci: docker for docker, oci in _DOCKER_TO_OCI.items()}


def is_index(media_type: str) -> bool:
    """An OCI image index or a Docker manifest list."""
    return media_type in INDEX_TYPES


def is_manifest(media_type: str) -> bool:
    """An OCI image manifest or a Docker schema2 manifest."""
    return media_type in MANIFEST_TYPES


def is_config(media_type: str) -> bool:
    """An OCI or Docker image config."""
    return media_type in CONFIG_TYPES


def is_layer(media_type: str) -> bool:
    """A filesystem layer of a known compression, OCI or Docker."""
    return media_type in LAYER_TYPES


def is_docker(media_type: str) -> bool:
    """A Docker (not OCI) media type."""
    return media_type.startswith("application/vnd.docker.")


def is_nondistributable(media_type: str) -> bool:
    """A layer a registry need not hold (foreign/non-distributable); it may be absent locally."""
    return media_type in NONDISTRIBUTABLE_TYPES


def layer_compression(media_type: str) -> str:
    """ "gzip", "zstd" or "" (uncompressed) for a layer media type; ValueError for other types."""
    if not is_layer(media_type):
        raise ValueError(f"not a layer media type: {media_type}")
    if media_type.endswith(("gzip", "+gzip")):
        return "gzip"
    if media_type.endswith(("zstd", "+zstd")):
        return "zstd"
    return ""


def to_oci(media_type: str) -> str:
    """The OCI equivalent of a Docker media type; other types are returned unchanged."""
    return _DOCKER_TO_OCI.get(media_type, media_type)


def to_docker(media_type: str) -> str:
    """The Docker equivalent of an OCI media type; types Docker lacks are returned unchanged."""
    return _OCI_TO_DOCKER.get(media_type, media_type)
