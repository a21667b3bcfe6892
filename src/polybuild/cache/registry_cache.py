"""A cache in a registry (`type=registry,ref=REF`): read its manifest and config, fetch a
layer blob when a hit needs it, and write records back (blobs the repository already holds
are found by HEAD and never sent again; the tag moves last, to a complete cache)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import BinaryIO

from polybuild.cache.config import Record, decode, encode
from polybuild.cache.inline import inline_records
from polybuild.cache.manifest import CacheArtifact, layers_of, make_manifest, read_manifest
from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.config import parse_config
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.layer import Layer
from polybuild.image.manifest import Index, Manifest, Stored
from polybuild.image.reference import Reference
from polybuild.registry.client import RegistryClient
from polybuild.registry.sources import BlobSources
from polybuild.tasks import run_all


class RegistryCache:
    """One cache ref; `client` is the build's registry client (credentials, config)."""

    def __init__(self, ref: Reference, client: RegistryClient) -> None:
        self.ref = ref
        self.client = client

    @property
    def name(self) -> str:
        return str(self.ref)

    async def artifact(self) -> CacheArtifact:
        """The cache manifest's config and layers (RegistryError/ImageError if none)."""
        descriptor = await self.client.resolve(self.ref)
        stored = await self.client.get_manifest(self.ref, descriptor)
        try:
            return read_manifest(stored.raw, stored.media_type)
        except ImageError as exc:
            raise ImageError(f"{self.ref}: {exc.message}") from None

    async def read(self) -> dict[str, Record]:
        """Every readable record of the cache (only its manifest and config are fetched);
        an image instead of a cache gives the inline cache of each of its platforms."""
        descriptor = await self.client.resolve(self.ref)
        stored = await self.client.get_manifest(self.ref, descriptor)
        try:
            artifact = read_manifest(stored.raw, stored.media_type)
        except ImageError as exc:
            records = await self._inline(stored)
            if records is None:
                raise ImageError(f"{self.ref}: {exc.message}") from None
            return records
        raw = await self.client.fetch_bytes(self.ref, artifact.config)
        return decode(raw, artifact.known())

    async def _inline(self, top: Stored[Manifest] | Stored[Index]) -> dict[str, Record] | None:
        """The inline caches of an image's platforms (None: it is no image with one)."""
        if isinstance(top.value, Index):
            entries = [e for e in top.value.manifests if mt.is_manifest(e.media_type)]
            images = [await self.client.get_manifest(self.ref, e) for e in entries[:64]]
        else:
            images = [top]
        records: dict[str, Record] = {}
        found = False
        for image in images:
            if not isinstance(image.value, Manifest) or not mt.is_config(
                image.value.config.media_type
            ):
                continue
            raw = await self.client.fetch_bytes(self.ref, image.value.config)
            value = parse_config(raw, image.value.config.media_type).value.inline_cache
            found = found or bool(value)
            records.update(inline_records(value, image.value.layers))
        return records if found else None

    async def fetch(self, layer: Layer, content: ContentStore) -> None:
        """One layer blob into `content`, verified against its digest and size."""
        await self.client.fetch_blob(self.ref, layer.descriptor, content)
        BlobSources(content.root.parent / "blob-sources").add(layer.blob, self.ref.repository())

    async def write(
        self,
        records: Mapping[str, Record],
        content: ContentStore,
        *,
        image_manifest: bool = True,
    ) -> Descriptor:
        """Push `records` as this cache: blobs (HEAD first; a blob neither in the repository
        nor in `content` fails), the config, then the manifest under the tag."""
        config = encode(records.values())
        config_descriptor, document = make_manifest(
            config, layers_of(records.values()), image_manifest=image_manifest
        )
        content.put(config, config_descriptor.digest)
        repository = self.ref.repository()

        async def blob(descriptor: Descriptor) -> None:
            await self.client.push_blob(repository, descriptor, _opener(content, descriptor))

        layers = [layer.descriptor for layer in layers_of(records.values())]
        await run_all(blob(d) for d in (*layers, config_descriptor))
        await self.client.push_manifest(self.ref, document, target=self.ref.tag or "latest")
        return Descriptor(document.media_type, document.digest, len(document.raw))


def _opener(content: ContentStore, descriptor: Descriptor) -> Callable[[], BinaryIO]:
    path = content.path(descriptor.digest)

    def open_() -> BinaryIO:
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise ImageError(
                f"cannot export the cache: layer {descriptor.digest} is neither in the cache's "
                "repository nor in the local store"
            ) from None

    return open_


__all__ = ["RegistryCache"]
