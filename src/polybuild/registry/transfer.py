"""Pulling images into the local store (variants chosen by containerd's rules, layers fetched
in parallel and once), `FROM` base images for the build, and pushing (see registry.push_plan)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from polybuild.image import mediatypes as mt
from polybuild.image.config import parse_config
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest, Stored, is_attestation, parse_manifest
from polybuild.image.reference import Reference, parse
from polybuild.image.select import NoMatchingPlatformError, Selected, select_manifest
from polybuild.image.store import ImageStore
from polybuild.platforms import Platform, default_platform, format_platform, only
from polybuild.registry.client import RegistryClient, client_for
from polybuild.registry.pull_progress import BlobFetched, report_blob
from polybuild.registry.push_plan import DEFAULT_CONCURRENCY, Log, PushPlan, plan_push, push
from polybuild.registry.sources import BlobSources
from polybuild.tasks import run_all

PlatformChoice = Sequence[Platform] | Literal["all"] | None
Document = Stored[Manifest] | Stored[Index]


@dataclass(frozen=True, slots=True)
class Pulled:
    """What a pull stored: the top descriptor, the name it got, and the manifests fetched."""

    target: Descriptor
    name: Reference | None
    manifests: tuple[Descriptor, ...]


class _Puller:
    """One pull: the registry client, the store, and the blobs already being fetched."""

    def __init__(
        self,
        client: RegistryClient,
        store: ImageStore,
        ref: Reference,
        concurrency: int,
        sources: BlobSources,
    ) -> None:
        self.client = client
        self.store = store
        self.ref = ref
        self.limit = asyncio.Semaphore(max(concurrency, 1))
        self.sources = sources
        self.started: dict[str, asyncio.Task[None]] = {}

    async def document(self, descriptor: Descriptor) -> Document:
        """A manifest's verified bytes: from the local store when present, else the registry."""
        content = self.store.content
        if content.exists(descriptor.digest):
            raw = content.get(descriptor.digest)
            return parse_manifest(raw, descriptor.media_type)
        return await self.client.get_manifest(self.ref, descriptor)

    async def blob(self, descriptor: Descriptor) -> None:
        """Fetch a blob once, however many manifests share it."""
        key = str(descriptor.digest)
        if key not in self.started:
            self.started[key] = asyncio.ensure_future(self._fetch(descriptor))
        await self.started[key]

    async def _fetch(self, descriptor: Descriptor) -> None:
        async with self.limit:
            fetched = not self.store.content.exists(descriptor.digest)
            started = time.time()
            await self.client.fetch_blob(self.ref, descriptor, self.store.content)
            if fetched and mt.is_layer(descriptor.media_type):
                report_blob(
                    BlobFetched(str(descriptor.digest), descriptor.size, started, time.time())
                )
        self.sources.add(descriptor.digest, self.ref.repository())

    async def platform_of(self, entry: Descriptor) -> Platform | None:
        """The entry's platform, from the index or else from its config."""
        if entry.platform is not None:
            return entry.platform
        if not mt.is_manifest(entry.media_type):
            return None
        manifest = await self.document(entry)
        assert isinstance(manifest.value, Manifest)
        if not mt.is_config(manifest.value.config.media_type):
            return None
        raw = await self.client.fetch_bytes(self.ref, manifest.value.config)
        return parse_config(raw, manifest.value.config.media_type).value.platform

    async def image(self, descriptor: Descriptor) -> Stored[Manifest]:
        """Fetch one image manifest with its config and layers (in parallel)."""
        manifest = await self.document(descriptor)
        if not isinstance(manifest.value, Manifest):
            raise NoMatchingPlatformError(f"{descriptor.digest} is not an image manifest")
        value = manifest.value
        # Foreign layers are fetched from their URLs by whoever needs them.
        await run_all(
            self.blob(blob)
            for blob in (value.config, *value.layers)
            if not (mt.is_nondistributable(blob.media_type) and blob.urls)
        )
        self.store.content.put(manifest.raw, manifest.digest)
        return Stored(value, manifest.raw, manifest.media_type, manifest.digest)


async def _choose(puller: _Puller, index: Index, platforms: PlatformChoice) -> list[Descriptor]:
    entries = [e for e in index.manifests if mt.is_manifest(e.media_type)]
    if platforms == "all":
        return entries
    found = [(e, await puller.platform_of(e)) for e in entries if not is_attestation(e)]
    candidates = [(e, p) for e, p in found if p is not None and p.os != "unknown"]
    chosen: list[Descriptor] = []
    for wanted in platforms or [default_platform()]:
        matcher = only(wanted)
        ranked = [(r, e) for e, p in candidates if (r := matcher.rank(p)) is not None]
        if not ranked:
            available = ", ".join(sorted({format_platform(p) for _, p in candidates})) or "none"
            raise NoMatchingPlatformError(
                f"{puller.ref.familiar()} has no variant for {format_platform(wanted)} "
                f"(available: {available})",
                hint="choose one of the available platforms with --platform",
            )
        best = min(ranked, key=lambda item: item[0])[1]
        if best not in chosen:
            chosen.append(best)
    return chosen


async def pull(
    store: ImageStore,
    ref: Reference | str,
    platforms: PlatformChoice = None,
    *,
    client: RegistryClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    tag: bool = True,
    sources: BlobSources | None = None,
) -> Pulled:
    """Pull `ref` into the local store and name it; returns what was stored.

    `platforms`: None for this machine's variant, a list for the best variant of each
    (containerd's rules: linux/arm64 may get arm/v8.. when there is no arm64), "all" for
    every one. The registry's index is kept byte for byte, so the image keeps its digest;
    it may reference variants that were not pulled. Blobs are written under a lease and
    verified; the name is set last, so a failed pull leaves no image behind. Without a
    `client` one is made over `transport` (default: the network) and closed at the end.
    """
    ref = parse(ref) if isinstance(ref, str) else ref
    sources = sources or BlobSources(store.root / "blob-sources")
    async with client_for(client, transport) as active:
        with store.lease():
            puller = _Puller(active, store, ref, concurrency, sources)
            top = await active.get_manifest(ref)
            if isinstance(top.value, Index):
                chosen = await _choose(puller, top.value, platforms)
                await run_all(puller.image(entry) for entry in chosen)
            else:
                chosen = [top.descriptor()]
                await puller.image(top.descriptor())
            store.content.put(top.raw, top.digest)
            target = top.descriptor()
            name: Reference | None = None
            if tag and ref.tag:
                name = store.tag(Reference(ref.domain, ref.path, ref.tag), target)
            elif tag:
                store.add_unnamed(target)
    return Pulled(target, name, tuple(chosen))


async def resolve_base_image(
    store: ImageStore,
    ref: Reference | str,
    platform: Platform,
    *,
    client: RegistryClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Selected:
    """The manifest and config of `ref` for `platform`, pulled into the local store (`FROM`).

    Blobs already stored are not fetched again; the image is named in the store (as a pull
    does), which keeps its blobs from garbage collection.
    """
    pulled = await pull(store, ref, [platform], client=client, transport=transport)
    return select_manifest(store.content, pulled.target, platform)


__all__ = [
    "Log",
    "PlatformChoice",
    "Pulled",
    "PushPlan",
    "plan_push",
    "pull",
    "push",
    "resolve_base_image",
]
