"""`imagetools create`: resolve the sources (references, bare digests, descriptors), combine
them into one index (or copy one as it is), copy what the target repositories lack (mounting
within a registry) and push it to each tag, reporting steps to a progress sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from polybuild.errors import UsageError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest, Stored
from polybuild.image.reference import Reference
from polybuild.imagetools.combine import Combined, Source, combine_index, filter_platforms
from polybuild.imagetools.sources import (
    AnnotationKey,
    SourceSpec,
    assign_repositories,
    merge_resolved,
)
from polybuild.platforms import Platform
from polybuild.registry.client import RegistryClient
from polybuild.scratch import scratch_dir


class Progress(Protocol):
    """Where create reports: one step per target repository, with log lines under it."""

    def step(self, name: str) -> None: ...

    def log(self, text: str) -> None: ...

    def done(self) -> None: ...


async def _platform_from_config(
    client: RegistryClient, ref: Reference, manifest: Manifest, platform: Platform | None
) -> Platform | None:
    """A manifest's platform, its missing os/architecture filled in from the config."""
    if platform is not None and platform.os and platform.architecture:
        return platform
    if not mt.is_config(manifest.config.media_type):
        return platform
    config = json.loads(await client.fetch_bytes(ref, manifest.config))
    base = platform or Platform("", "")
    architecture = base.architecture or str(config.get("architecture", ""))
    variant = base.variant if base.architecture else str(config.get("variant", ""))
    return replace(
        base, os=base.os or str(config.get("os", "")), architecture=architecture, variant=variant
    )


async def _resolve(client: RegistryClient, source: SourceSpec) -> SourceSpec:
    if not source.needs_resolve:
        return source
    assert source.ref is not None
    return merge_resolved(source, await client.resolve(source.ref))


async def _fetch(
    client: RegistryClient, source: SourceSpec
) -> tuple[Source, Stored[Manifest] | Stored[Index]]:
    assert source.ref is not None
    descriptor = source.descriptor()
    document = await client.get_manifest(source.ref, descriptor)
    if not descriptor.media_type:
        descriptor = replace(descriptor, media_type=document.media_type)
    if isinstance(document.value, Manifest):
        platform = await _platform_from_config(
            client, source.ref, document.value, descriptor.platform
        )
        descriptor = descriptor.with_platform(platform)
    return Source(source.ref, descriptor), document


async def combine(
    client: RegistryClient,
    specs: Sequence[SourceSpec],
    *,
    annotations: Mapping[AnnotationKey, str] | None = None,
    prefer_index: bool = True,
    platforms: Sequence[Platform] = (),
) -> Combined:
    """The new image of `specs` (each with a repository) as buildx's Combine makes it."""
    resolved = await asyncio.gather(*(_resolve(client, s) for s in specs))
    fetched = await asyncio.gather(*(_fetch(client, s) for s in resolved))
    first, first_document = fetched[0]
    if len(fetched) == 1 and not annotations:
        if isinstance(first_document.value, Index):
            children = tuple(Source(first.ref, e) for e in first_document.value.manifests)
            return filter_platforms(Combined(first_document, children), first, platforms)
        if not prefer_index:
            return filter_platforms(Combined(first_document, (first,)), first, platforms)
    descriptors: list[Descriptor] = []
    sources: dict[str, Source] = {}
    for source, document in fetched:
        entries = (
            document.value.manifests if isinstance(document.value, Index) else (source.descriptor,)
        )
        for entry in entries:
            descriptors.append(entry)
            sources[str(entry.digest)] = Source(source.ref, entry)
    index = combine_index(descriptors, annotations)
    manifests = tuple(sources[str(e.digest)] for e in index.value.manifests)
    return filter_platforms(Combined(index, manifests), first, platforms)


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


async def push_combined(
    client: RegistryClient,
    combined: Combined,
    tags: Sequence[Reference],
    progress: Progress | None = None,
) -> None:
    """Copy what each tag's repository lacks, then push the new image to every tag."""
    by_repository: dict[str, list[Reference]] = {}
    for tag in tags:
        by_repository.setdefault(tag.name, []).append(tag)
    document = combined.document
    with scratch_dir("imagetools") as tmp:
        scratch = ContentStore(tmp, clean_temp=False)
        for repository, repository_tags in by_repository.items():
            if progress is not None:
                progress.step(f"pushing {repository}")
            for source in combined.manifests:
                if progress is not None:
                    progress.log(
                        f"copying {source.descriptor.digest} from {source.ref} to {repository}"
                    )
                await _copy(client, source, repository_tags[0], scratch)
            for tag in repository_tags:
                if progress is not None:
                    progress.log(f"pushing {document.digest} to {tag}")
                await client.push_manifest(tag, document, target=tag.tag or str(document.digest))
            if progress is not None:
                progress.done()


async def create(
    client: RegistryClient,
    sources: Sequence[Reference | SourceSpec],
    tags: Sequence[Reference],
    *,
    append: bool = False,
    dry_run: bool = False,
    platforms: Sequence[Platform] = (),
    annotations: Mapping[AnnotationKey, str] | None = None,
    prefer_index: bool = True,
    progress: Progress | None = None,
) -> Stored[Index] | Stored[Manifest]:
    """Combine `sources` (after the first tag's current image with `append`) and push the
    result to every tag; with `dry_run` only make it."""
    if not sources:
        raise UsageError("no sources specified")
    if not tags and not dry_run:
        raise UsageError("can't push with no tags specified, please set --tag or --dry-run")
    specs = [s if isinstance(s, SourceSpec) else SourceSpec(str(s), ref=s) for s in sources]
    if append and tags:
        specs.insert(0, SourceSpec(str(tags[0]), ref=tags[0]))
    specs = assign_repositories(specs, tags)
    combined = await combine(
        client, specs, annotations=annotations, prefer_index=prefer_index, platforms=platforms
    )
    if not dry_run:
        await push_combined(client, combined, tags, progress)
    return combined.document
