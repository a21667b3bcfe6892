"""The cache a `--cache-to` / `--cache-from` value names: a registry ref or a local directory
(`inline` is read as a registry ref whose image carries the cache in its config)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from polybuild.cache.config import Record
from polybuild.cache.local_cache import LocalCache
from polybuild.cache.registry_cache import RegistryCache
from polybuild.cache.spec import CacheSpec, CacheType
from polybuild.errors import UsageError
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.layer import Layer
from polybuild.image.reference import parse
from polybuild.registry.client import RegistryClient

SUPPORTED = "type=registry, type=local or type=inline"


class CacheBackend(Protocol):
    """Where one cache lives."""

    @property
    def name(self) -> str: ...

    async def read(self) -> dict[str, Record]:
        """Its readable records (only the manifest and the config are fetched)."""

    async def fetch(self, layer: Layer, content: ContentStore) -> None:
        """One layer blob into `content`, verified."""

    async def write(
        self, records: Mapping[str, Record], content: ContentStore, *, image_manifest: bool = True
    ) -> Descriptor: ...


def check_type(spec: CacheSpec) -> None:
    """UsageError for a type polybuild's own nodes cannot use."""
    if spec.type not in (CacheType.REGISTRY, CacheType.LOCAL, CacheType.INLINE):
        raise UsageError(
            f"cache type {spec.type} ({spec}) is not supported by polybuild's own nodes",
            hint=f"use {SUPPORTED}; a BuildKit daemon node passes {spec.type} to the daemon",
        )


def backend_for(spec: CacheSpec, client: RegistryClient) -> CacheBackend:
    """The backend of `spec`; UsageError for a type polybuild's own nodes cannot use."""
    check_type(spec)
    if spec.type is CacheType.INLINE:
        raise UsageError(
            f"{spec}: an inline cache is read from its image",
            hint="use --cache-from IMAGE (the image pushed with --cache-to type=inline)",
        )
    if spec.type is CacheType.REGISTRY:
        return RegistryCache(parse(spec.get("ref")), client)
    path = spec.get("dest") or spec.get("src")
    return LocalCache(Path(path), tag=spec.get("tag"), digest=spec.get("digest"))


__all__ = ["SUPPORTED", "CacheBackend", "backend_for", "check_type"]
