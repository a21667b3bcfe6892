"""Pushing an image from the content store: every platform's blobs and manifest first, the
index last and once per tag, so a tag never points at an incomplete image."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from polybuild.errors import BlobNotFoundError, ImageError, UsageError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.convert import is_convertible, to_docker_index, to_docker_manifest
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import (
    Index,
    Manifest,
    Stored,
    encode_index,
    encode_manifest,
    is_attestation,
    parse_index,
    parse_manifest,
)
from polybuild.image.reference import Reference
from polybuild.image.walk import read_document
from polybuild.platforms import format_platform
from polybuild.registry.client import RegistryClient, client_for
from polybuild.registry.sources import BlobSources
from polybuild.registry.upload import UploadResult
from polybuild.tasks import run_all

Document = Stored[Manifest] | Stored[Index]
Log = Callable[[str], None]
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class PushPlan:
    """What to push: blobs, then manifests and nested indexes (children first), then `top`."""

    top: Document
    documents: tuple[Document, ...]
    blobs: tuple[Descriptor, ...]


def plan_push(
    content: ContentStore,
    target: Descriptor,
    *,
    docker_media_types: bool = False,
    elsewhere: Callable[[Digest], bool] | None = None,
) -> PushPlan:
    """Everything `target` needs in a registry, re-encoded with Docker media types if asked.

    A layer not in `content` is planned anyway when `elsewhere` says a registry holds it (a
    BuildKit node pushed it by digest): the push finds it there and never reads it here.
    ImageError names the first missing blob (an image pulled for some platforms only).
    """
    documents: list[Document] = []
    blobs: dict[str, Descriptor] = {}
    top = _plan(content, target, docker_media_types, documents, blobs, elsewhere)
    return PushPlan(top, tuple(documents[:-1]), tuple(blobs.values()))


def _missing(descriptor: Descriptor) -> ImageError:
    platform = f" ({format_platform(descriptor.platform)})" if descriptor.platform else ""
    return ImageError(
        f"cannot push: {descriptor.media_type} {descriptor.digest}{platform} is not in the "
        "local store",
        hint="pull the image with --all-platforms (or build it again) before pushing it",
    )


def _plan(
    content: ContentStore,
    descriptor: Descriptor,
    docker: bool,
    documents: list[Document],
    blobs: dict[str, Descriptor],
    elsewhere: Callable[[Digest], bool] | None = None,
) -> Document:
    try:
        raw = read_document(content, descriptor)
    except BlobNotFoundError:
        raise _missing(descriptor) from None
    stored: Document
    if mt.is_index(descriptor.media_type):
        index = parse_index(raw, descriptor.media_type)
        entries: list[Descriptor] = []
        for entry in index.value.manifests:
            if docker and is_attestation(entry):
                continue  # a Docker manifest list cannot carry attestations
            child = _plan(content, entry, docker, documents, blobs, elsewhere)
            entries.append(
                Descriptor(
                    child.media_type,
                    child.digest,
                    child.size,
                    entry.platform,
                    dict(entry.annotations),
                )
            )
        stored = index
        changed = [e.digest for e in index.value.manifests] != [e.digest for e in entries]
        if docker and (index.media_type != mt.DOCKER_MANIFEST_LIST or changed):
            stored = encode_index(to_docker_index(index.value, tuple(entries)))
    elif mt.is_manifest(descriptor.media_type):
        manifest = parse_manifest(raw, descriptor.media_type)
        for blob in (manifest.value.config, *manifest.value.layers):
            if not content.exists(blob.digest):
                if mt.is_nondistributable(blob.media_type) or blob.urls:
                    continue  # foreign layers stay where their URLs say
                if elsewhere is None or not elsewhere(blob.digest):
                    raise _missing(blob)
            blobs.setdefault(str(blob.digest), blob)
        stored = manifest
        convert = docker and manifest.media_type != mt.DOCKER_MANIFEST
        if convert and is_convertible(manifest.value):
            stored = encode_manifest(to_docker_manifest(manifest.value))
    else:
        raise ImageError(f"cannot push {descriptor.media_type} {descriptor.digest}: not an image")
    if all(d.digest != stored.digest for d in documents):
        documents.append(stored)
    return stored


def _group(refs: Sequence[Reference]) -> dict[str, list[Reference]]:
    groups: dict[str, list[Reference]] = {}
    for ref in refs:
        groups.setdefault(ref.name, []).append(ref)
    return groups


async def push(
    content: ContentStore,
    target: Descriptor,
    refs: Sequence[Reference],
    *,
    docker_media_types: bool = False,
    client: RegistryClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sources: BlobSources | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    log: Log | None = None,
) -> Descriptor:
    """Push image `target` from `content` to every reference; returns the pushed top descriptor.

    Per repository: blobs (HEAD first, mounted from another repository of the same registry
    when one is known to hold them, else uploaded), then manifests by digest, then the top
    manifest or index once per tag. With `docker_media_types` manifests are re-encoded with
    Docker types (a manifest list on top), which changes their digests. Without a `client`
    one is made over `transport` (default: the network) and closed at the end.
    """
    if not refs:
        raise UsageError("nothing to push to: give at least one image name")
    sources = sources or BlobSources(content.root.parent / "blob-sources")
    domains = {ref.domain for ref in refs}

    def elsewhere(digest: Digest) -> bool:
        return all(sources.get(digest, domain) for domain in domains)

    plan = plan_push(content, target, docker_media_types=docker_media_types, elsewhere=elsewhere)
    for ref in refs:
        if ref.digest is not None and ref.digest != plan.top.digest:
            raise UsageError(
                f"cannot push {ref}: the image's digest is {plan.top.digest}",
                hint="push to a name without a digest, or with the image's own digest",
            )
    async with client_for(client, transport) as active:
        for group in _group(refs).values():
            await _push_repository(active, content, plan, group, sources, concurrency, log)
    return plan.top.descriptor()


async def _push_repository(
    client: RegistryClient,
    content: ContentStore,
    plan: PushPlan,
    refs: list[Reference],
    sources: BlobSources,
    concurrency: int,
    log: Log | None,
) -> None:
    repository = refs[0].repository()
    limit = asyncio.Semaphore(max(concurrency, 1))

    async def blob(descriptor: Descriptor) -> None:
        async with limit:
            mount_from = sources.get(descriptor.digest, repository.domain)
            result = await client.push_blob(
                repository, descriptor, _opener(content, descriptor), mount_from=mount_from
            )
        sources.add(descriptor.digest, repository)
        if log is not None:
            log(f"{_kind(descriptor)} {descriptor.digest}: {_RESULT_WORDS[result]}")

    await run_all(blob(descriptor) for descriptor in plan.blobs)
    for document in plan.documents:
        if not await client.manifest_exists(repository, document.digest):
            await client.push_manifest(repository, document, target=str(document.digest))
    for ref in refs:
        await client.push_manifest(ref, plan.top, target=ref.tag or str(plan.top.digest))
        if log is not None:
            log(f"pushed {ref.with_digest(plan.top.digest)}")


_RESULT_WORDS = {
    UploadResult.EXISTS: "already exists",
    UploadResult.MOUNTED: "mounted",
    UploadResult.UPLOADED: "pushed",
}


def _kind(descriptor: Descriptor) -> str:
    return "config" if mt.is_config(descriptor.media_type) else "layer"


def _opener(content: ContentStore, descriptor: Descriptor) -> Callable[[], BinaryIO]:
    path = content.path(descriptor.digest)

    def open_() -> BinaryIO:
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise ImageError(
                f"cannot push {descriptor.digest}: the registry no longer has it and it is "
                "not in the local store (a BuildKit node pushed it by digest)",
                hint="build again, or export the image to the local store with --load",
            ) from None

    return open_
