"""A cache in a registry (`type=registry,ref=REF`): read its manifest and config, fetch a
layer blob when a hit needs it, and write records back (blobs the repository already holds
are found by HEAD and never sent again; the tag moves last, to a complete cache)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import BinaryIO

from polybuild.cache.config import Record, decode, encode
from polybuild.cache.manifest import CacheArtifact, layers_of, make_manifest, read_manifest
from polybuild.errors import ImageError
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.layer import Layer
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
        """Every readable record of the cache (only its manifest and config are fetched)."""
        artifact = await self.artifact()
        raw = await self.client.fetch_bytes(self.ref, artifact.config)
        return decode(raw, artifact.known())

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
