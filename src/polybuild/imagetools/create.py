"""`imagetools create`: combine manifests and indexes from registries into one index, copy what
the target repositories lack (mounting within a registry), and push it to each tag."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from polybuild.errors import ImageError, UsageError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest, Stored, encode_index, is_attestation
from polybuild.image.reference import Reference
from polybuild.platforms import Platform, normalize
from polybuild.registry.client import RegistryClient
from polybuild.scratch import scratch_dir

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Source:
    """One manifest (or nested index) to go into the new index, and where it comes from."""

    ref: Reference
    descriptor: Descriptor


def combine_index(descriptors: Sequence[Descriptor]) -> Stored[Index]:
    """One index of `descriptors`: first occurrence of each digest wins (annotations merged);
    a Docker manifest list only when every entry is a Docker type (buildx's Combine)."""
    merged: dict[str, Descriptor] = {}
    for descriptor in descriptors:
        key = str(descriptor.digest)
        if key in merged:
            annotations = {**descriptor.annotations, **merged[key].annotations}
            merged[key] = merged[key].with_annotations(annotations)
        else:
            merged[key] = descriptor
    entries = tuple(merged.values())
    if not entries:
        raise ImageError("nothing to combine: the sources have no manifests")
    docker = all(mt.is_docker(e.media_type) for e in entries)
    return encode_index(
        Index(manifests=entries, media_type=mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX)
    )


async def _platform_of(
    client: RegistryClient, ref: Reference, descriptor: Descriptor
) -> Platform | None:
    if descriptor.platform is not None or not mt.is_manifest(descriptor.media_type):
        return descriptor.platform
    manifest = await client.get_manifest(ref, descriptor)
    assert isinstance(manifest.value, Manifest)
    if not mt.is_config(manifest.value.config.media_type):
        return None
    config = json.loads(await client.fetch_bytes(ref, manifest.value.config))
    return Platform(config.get("os", ""), config.get("architecture", ""), config.get("variant", ""))


async def collect_sources(
    client: RegistryClient, refs: Sequence[Reference], platforms: Sequence[Platform] = ()
) -> list[Source]:
    """Every manifest the sources name, with platforms filled in from configs when missing;
    `platforms` keeps only those (and their attestations)."""
    wanted = {normalize(p) for p in platforms}
    found: list[Source] = []
    for ref in refs:
        top = await client.get_manifest(ref)
        entries = list(top.value.manifests) if isinstance(top.value, Index) else [top.descriptor()]
        kept: list[Descriptor] = []
        for entry in entries:
            if is_attestation(entry):
                kept.append(entry)
                continue
            platform = await _platform_of(client, ref, entry)
            if wanted and (platform is None or normalize(platform) not in wanted):
                continue
            kept.append(entry.with_platform(platform))
        kept_digests = {str(e.digest) for e in kept}
        for entry in kept:
            subject = entry.annotations.get(mt.ANNOTATION_DOCKER_REFERENCE_DIGEST)
            if is_attestation(entry) and subject not in kept_digests:
                continue  # an attestation of a platform that was filtered out
            found.append(Source(ref.with_digest(None), entry))
    return found


async def _copy(
    client: RegistryClient, source: Source, target: Reference, scratch: ContentStore
) -> None:
    """Make `source`'s manifest (and everything under it) exist in `target`'s repository."""
    if source.ref.name == target.name or await client.manifest_exists(
        target, source.descriptor.digest
    ):
        return
    document = await client.get_manifest(source.ref, source.descriptor)
    if isinstance(document.value, Index):
        for entry in document.value.manifests:
            await _copy(client, Source(source.ref, entry), target, scratch)
    else:
        for blob in (document.value.config, *document.value.layers):
            if mt.is_nondistributable(blob.media_type) and blob.urls:
                continue
            if await client.blob_exists(target, blob):
                continue
            if source.ref.domain == target.domain and await client.mount_blob(
                target, blob, source.ref
            ):
                continue
            await client.fetch_blob(source.ref, blob, scratch)
            path = scratch.path(blob.digest)
            await client.push_blob(target, blob, lambda p=path: p.open("rb"))  # type: ignore[misc]
    await client.push_manifest(target, document, target=str(document.digest))


async def create(
    client: RegistryClient,
    sources: Sequence[Reference],
    tags: Sequence[Reference],
    *,
    append: bool = False,
    dry_run: bool = False,
    platforms: Sequence[Platform] = (),
    log: Log | None = None,
) -> Stored[Index]:
    """Combine `sources` (plus the first tag's current image with `append`) and push the new
    index to every tag; with `dry_run` only build it."""
    if not tags and not dry_run:
        raise UsageError("give at least one tag with -t (or use --dry-run)")
    refs = list(sources)
    if append:
        if not tags:
            raise UsageError("--append needs a tag (-t) to append to")
        refs.insert(0, tags[0])
    if not refs:
        raise UsageError("give at least one source image")
    found = await collect_sources(client, refs, platforms)
    index = combine_index([s.descriptor for s in found])
    if dry_run:
        return index
    with scratch_dir("imagetools") as tmp:
        scratch = ContentStore(tmp, clean_temp=False)
        for tag in tags:
            for source in found:
                await _copy(client, source, tag, scratch)
            await client.push_manifest(tag, index, target=tag.tag or str(index.digest))
            if log is not None:
                log(f"pushed {tag.with_digest(index.digest)}")
    return index
