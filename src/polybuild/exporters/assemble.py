"""Assembling a build's per-platform images into one image: media types, compression, index.

The same source and options always give the same bytes and digests: manifests and the
index are encoded canonically, re-compression is deterministic, and no timestamp is added.
One platform gives a plain manifest as the image (as BuildKit without attestations); more
give an index (OCI) or manifest list (Docker) with one entry per platform, each carrying
its platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polybuild.errors import ImageError
from polybuild.exporters.recompress import recompress_layer
from polybuild.exporters.spec import Annotation, AnnotationTarget, ImageOptions
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.convert import convert_descriptor
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Index, Manifest, Stored, encode_index, encode_manifest
from polybuild.image.platform_image import ExportSource, PlatformImage, Predicate
from polybuild.layers import Compression, compression_for_media_type
from polybuild.platforms import Platform, format_platform, normalize


@dataclass(frozen=True, slots=True)
class AssembledImage:
    """The exported image: `target` is the index (several platforms) or the manifest (one).

    `target` carries the index-descriptor annotations; `platforms` holds the manifests as
    written (converted / re-compressed), in index order.
    """

    content: ContentStore
    target: Descriptor
    index: Stored[Index] | None
    platforms: tuple[PlatformImage, ...]
    docker_media_types: bool
    warnings: tuple[str, ...] = field(default=())
    # Attestations a local or tar output writes as files beside each platform's files
    attestation_files: tuple[Predicate, ...] = field(default=())

    @property
    def digest(self) -> Digest:
        return self.target.digest

    @property
    def config_digest(self) -> Digest | None:
        """The config's digest (the image ID) when there is exactly one platform."""
        return self.platforms[0].config.digest if len(self.platforms) == 1 else None


def _converted(descriptor: Descriptor, docker: bool) -> Descriptor:
    """`descriptor` in the wanted media type family; ImageError for a layer Docker lacks."""
    converted = convert_descriptor(descriptor, docker=docker)
    if docker and mt.is_layer(converted.media_type) and not mt.is_docker(converted.media_type):
        raise ImageError(
            f"layer type {converted.media_type} has no Docker equivalent",
            hint="keep OCI media types (oci-mediatypes=true)",
        )
    return converted


def _annotations(
    annotations: tuple[Annotation, ...], target: AnnotationTarget, platform: Platform | None
) -> dict[str, str]:
    wanted = normalize(platform) if platform is not None else None
    return {
        a.key: a.value
        for a in annotations
        if a.target is target and (a.platform is None or a.platform == wanted)
    }


def _wants_recompression(current: Compression, options: ImageOptions) -> bool:
    """BuildKit's rule: `compression` applies to layers that must be (re)compressed anyway;
    only force-compression re-compresses layers already compressed another way."""
    wanted = options.compression
    if wanted is None or wanted is current:
        return False
    return options.force_compression or current is Compression.NONE


def _layer(
    content: ContentStore,
    layer: Descriptor,
    diff_id: Digest | None,
    options: ImageOptions,
    docker: bool,
) -> Descriptor:
    if not mt.is_layer(layer.media_type) or mt.is_nondistributable(layer.media_type):
        return _converted(layer, docker)  # foreign layers are never rewritten
    current = compression_for_media_type(layer.media_type)
    if _wants_recompression(current, options):
        assert options.compression is not None
        if diff_id is None:
            raise ImageError(f"layer {layer.digest} has no diff-id in the image config")
        return recompress_layer(
            content,
            layer,
            diff_id,
            options.compression,
            level=options.compression_level,
            docker=docker,
        )
    return _converted(layer, docker)


def _platform_image(
    content: ContentStore, image: PlatformImage, options: ImageOptions, docker: bool
) -> PlatformImage:
    manifest = image.manifest.value
    diff_ids = image.config.value.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise ImageError(
            f"{format_platform(image.platform)}: the manifest has {len(manifest.layers)} layers "
            f"but the config {len(diff_ids)} diff-ids"
        )
    layers = tuple(
        _layer(content, layer, diff_id, options, docker)
        for layer, diff_id in zip(manifest.layers, diff_ids, strict=True)
    )
    annotations = dict(manifest.annotations)
    annotations.update(_annotations(options.annotations, AnnotationTarget.MANIFEST, image.platform))
    config_type = mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG
    new = Manifest(
        config=Descriptor(config_type, image.config.digest, image.config.size),
        layers=layers,
        media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        annotations=annotations,
        subject=manifest.subject,
        artifact_type=manifest.artifact_type,
    )
    if new == manifest:
        stored = image.manifest  # unchanged: keep the exact bytes the build wrote
    else:
        if docker and (new.annotations or new.subject or new.artifact_type):
            raise ImageError(
                "Docker schema2 manifests cannot carry annotations, subject or artifactType",
                hint="keep OCI media types (oci-mediatypes=true)",
            )
        stored = encode_manifest(new)
    content.put(stored.raw, stored.digest)
    config = Stored(image.config.value, image.config.raw, config_type, image.config.digest)
    return PlatformImage(image.platform, stored, config)


def _check_source(source: ExportSource) -> None:
    if not source.platforms:
        raise ImageError("nothing to export: the build produced no image")
    seen: dict[Platform, Platform] = {}
    for image in source.platforms:
        key = normalize(image.platform)
        if key in seen:
            raise ImageError(f"the build produced two images for {format_platform(key)}")
        seen[key] = image.platform
        for blob in (image.manifest, image.config):
            if not source.content.exists(blob.digest):
                raise ImageError(f"{blob.digest} ({blob.media_type}) is not in the content store")


def assemble(source: ExportSource, options: ImageOptions) -> AssembledImage:
    """Write the exported image (manifests, index) into the source's content store."""
    _check_source(source)
    warnings: list[str] = []
    docker = not options.oci_mediatypes
    if docker and options.compression is Compression.ZSTD:
        # BuildKit does the same: Docker schema2 has no zstd layer type every client reads.
        warnings.append("zstd compression needs OCI media types: using them (oci-mediatypes=true)")
        docker = False
    content = source.content
    images = tuple(_platform_image(content, image, options, docker) for image in source.platforms)
    index_annotations = _annotations(options.annotations, AnnotationTarget.INDEX, None)
    top_annotations = _annotations(options.annotations, AnnotationTarget.INDEX_DESCRIPTOR, None)
    if len(images) == 1 and not source.multi_platform:
        if index_annotations or _has(options, AnnotationTarget.MANIFEST_DESCRIPTOR):
            warnings.append(
                "a single-platform image has no index: index and manifest-descriptor "
                "annotations are not written"
            )
        only = images[0].manifest
        # As BuildKit writes it: the platform on the descriptor (index.json's entry) tells a
        # reader which platform the layout holds without opening the manifest.
        target = only.descriptor(platform=images[0].platform, annotations=top_annotations)
        return AssembledImage(content, target, None, images, docker, tuple(warnings))
    entries = tuple(
        image.manifest.descriptor(
            platform=image.platform,
            annotations=_annotations(
                options.annotations, AnnotationTarget.MANIFEST_DESCRIPTOR, image.platform
            ),
        )
        for image in images
    )
    index = encode_index(
        Index(
            manifests=entries,
            media_type=mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX,
            annotations=index_annotations,
        )
    )
    content.put(index.raw, index.digest)
    target = index.descriptor(annotations=top_annotations)
    return AssembledImage(content, target, index, images, docker, tuple(warnings))


def _has(options: ImageOptions, target: AnnotationTarget) -> bool:
    return any(a.target is target for a in options.annotations)


__all__ = ["AssembledImage", "assemble"]
