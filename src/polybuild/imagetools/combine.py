"""The index `imagetools create` makes, decided with no I/O as buildx's Combine does: merge
descriptors by digest, a Docker list only when every entry is a Docker type, annotations on
the index and its descriptors, `--platform` filtering that keeps attestations of what stays,
and the bytes as Go's json.MarshalIndent writes them (what buildx pushes and --dry-run prints)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from polybuild.errors import ImageError, UsageError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest, Stored, encode_index, parse_index
from polybuild.image.reference import Reference
from polybuild.imagetools.sources import AnnotationKey
from polybuild.platforms import Platform, format_platform, normalize


@dataclass(frozen=True, slots=True)
class Source:
    """One manifest (or nested index) to go into the new image, and where it comes from."""

    ref: Reference
    descriptor: Descriptor


@dataclass(frozen=True, slots=True)
class Combined:
    """The new image (an index, or a manifest copied as it is) and what must be copied for it."""

    document: Stored[Index] | Stored[Manifest]
    manifests: tuple[Source, ...]


def _sort_annotations(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                dict(sorted(v.items()))
                if k == "annotations" and isinstance(v, dict)
                else _sort_annotations(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_sort_annotations(v) for v in value]
    return value


def go_indent(raw: bytes) -> bytes:
    """JSON re-written as Go's json.MarshalIndent(v, "", "  ") writes a struct: fields in
    order, map (annotation) keys sorted, <, > and & escaped."""
    text = json.dumps(_sort_annotations(json.loads(raw)), indent=2, ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.encode()


def indented_index(index: Index) -> Stored[Index]:
    """An index stored as buildx writes one."""
    return parse_index(go_indent(encode_index(index).raw), index.media_type)


def _annotate(
    entries: list[Descriptor], annotations: Mapping[AnnotationKey, str]
) -> tuple[list[Descriptor], dict[str, str]]:
    index_annotations: dict[str, str] = {}
    for key, value in annotations.items():
        if key.type == "index":
            index_annotations[key.key] = value
        elif key.type == "manifest-descriptor":
            for n, entry in enumerate(entries):
                wanted = key.platform is None or (
                    entry.platform is not None
                    and format_platform(entry.platform) == format_platform(key.platform)
                )
                if wanted:
                    entries[n] = entry.with_annotations({**entry.annotations, key.key: value})
        elif key.type == "index-descriptor":
            raise UsageError(f'"{key.type}" annotations are invalid while creating an image')
        else:
            raise UsageError(f'"{key.type}" annotations are not supported yet')
    return entries, index_annotations


def combine_index(
    descriptors: Sequence[Descriptor], annotations: Mapping[AnnotationKey, str] | None = None
) -> Stored[Index]:
    """One index of `descriptors`: a digest seen again keeps its place, takes a platform the
    later one has and its annotations over the earlier's; a Docker manifest list only when
    every entry is a Docker type (then annotations are left out, as buildx does)."""
    merged: dict[str, Descriptor] = {}
    for descriptor in descriptors:
        key = str(descriptor.digest)
        old = merged.get(key)
        if old is None:
            merged[key] = descriptor
            continue
        merged[key] = replace(
            old,
            media_type=old.media_type or descriptor.media_type,
            platform=descriptor.platform or old.platform,
            annotations={**old.annotations, **descriptor.annotations},
        )
    entries = list(merged.values())
    if not entries:
        raise ImageError("nothing to combine: the sources have no manifests")
    docker = all(e.media_type.startswith("application/vnd.docker.") for e in entries)
    index_annotations: dict[str, str] = {}
    if not docker and annotations:
        entries, index_annotations = _annotate(entries, annotations)
    return indented_index(
        Index(
            manifests=tuple(entries),
            media_type=mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX,
            annotations=index_annotations,
        )
    )


def _matches(platform: Platform | None, wanted: set[Platform]) -> bool:
    return platform is not None and normalize(platform) in wanted


def filter_platforms(
    combined: Combined, default: Source, platforms: Sequence[Platform]
) -> Combined:
    """Keep the manifests of `platforms` (and those without a platform, and attestations of
    kept ones); an index that loses nothing keeps its bytes."""
    if not platforms:
        return combined
    wanted = {normalize(p) for p in platforms}
    document = combined.document
    if isinstance(document.value, Manifest):
        platform = default.descriptor.platform
        if platform is None:
            raise UsageError("cannot filter platforms from a manifest without platform information")
        if not _matches(platform, wanted):
            raise UsageError(
                f"input platform {format_platform(platform)} does not match any of the "
                "provided platforms"
            )
        return combined
    entries = document.value.manifests
    by_digest = {str(e.digest): e for e in entries}
    references: set[str] = set()
    for entry in entries:
        if entry.annotations.get(mt.ANNOTATION_DOCKER_REFERENCE_TYPE) != mt.ATTESTATION_MANIFEST:
            continue
        subject = by_digest.get(entry.annotations.get(mt.ANNOTATION_DOCKER_REFERENCE_DIGEST, ""))
        if subject is not None and (subject.platform is None or _matches(subject.platform, wanted)):
            references.add(str(entry.digest))
    sources = {str(s.descriptor.digest): s for s in combined.manifests}
    kept = [
        e
        for e in entries
        if str(e.digest) in references or e.platform is None or _matches(e.platform, wanted)
    ]
    if not kept:
        raise UsageError("none of the manifests match the provided platforms")
    manifests = tuple(sources.get(str(e.digest), Source(default.ref, e)) for e in kept)
    if len(kept) == len(entries):
        return Combined(document, manifests)
    index = replace(document.value, manifests=tuple(kept))
    return Combined(indented_index(index), manifests)
