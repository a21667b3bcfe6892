"""The caches a build imports (`--cache-from`): every source's records by key, read up front
(manifest and config only), and each layer blob fetched from the source that listed it only
when a hit is used for something (a step runs on it, or it is exported). A blob that fails
its digest or cannot be fetched raises CacheBlobError, and the solver runs that step
instead."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from polybuild.cache.backends import CacheBackend
from polybuild.cache.config import Record
from polybuild.errors import CacheBlobError, PolybuildError
from polybuild.image.content import ContentStore
from polybuild.image.layer import Layer


class ImportedCache:
    """Records of the `--cache-from` sources (an earlier source wins a key)."""

    def __init__(self, sources: Sequence[tuple[CacheBackend, dict[str, Record]]]) -> None:
        self._records: dict[str, Record] = {}
        self._holders: dict[str, CacheBackend] = {}
        for backend, records in reversed(sources):
            self._records.update(records)
            for record in records.values():
                for layer in record.chain:
                    self._holders[str(layer.blob)] = backend
        self._fetches: dict[str, asyncio.Task[None]] = {}
        self.fetched_bytes = 0

    def __len__(self) -> int:
        return len(self._records)

    def lookup(self, key: str) -> tuple[Layer, ...] | None:
        record = self._records.get(key)
        return record.chain if record is not None else None

    async def materialize(self, layers: Sequence[Layer], content: ContentStore) -> None:
        """Fetch the layers `content` lacks (each blob once however many ask); CacheBlobError
        naming the blob when one cannot be fetched or fails its digest."""
        await asyncio.gather(
            *(self._fetch(layer, content) for layer in layers if not content.exists(layer.blob))
        )

    async def _fetch(self, layer: Layer, content: ContentStore) -> None:
        key = str(layer.blob)
        if key not in self._fetches:
            self._fetches[key] = asyncio.ensure_future(self._download(layer, content))
        await asyncio.shield(self._fetches[key])

    async def _download(self, layer: Layer, content: ContentStore) -> None:
        key = str(layer.blob)
        holder = self._holders.get(str(layer.blob))
        if holder is None:
            raise CacheBlobError(f"layer {layer.blob} is in no imported cache", blob=key)
        try:
            await holder.fetch(layer, content)
        except PolybuildError as exc:
            raise CacheBlobError(
                f"cache {holder.name}: layer {layer.blob}: {exc.message}", blob=key
            ) from exc
        self.fetched_bytes += layer.descriptor.size


__all__ = ["ImportedCache"]
