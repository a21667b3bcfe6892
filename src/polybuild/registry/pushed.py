"""An image someone else pushed by digest (a BuildKit daemon node): its index, manifests and
configs are fetched into the local store, verified; its layers stay in the registry and are
recorded in the blob sources, so pushing an index over it uploads nothing again (each layer's
HEAD answers that the repository has it) and reading a layer is never attempted."""

from __future__ import annotations

from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest
from polybuild.image.reference import Reference
from polybuild.image.store import ImageStore
from polybuild.registry.client import RegistryClient, client_for
from polybuild.registry.sources import BlobSources
from polybuild.tasks import run_all

MAX_MANIFESTS = 256  # an index a daemon pushed for one build; more is not a build's


async def fetch_pushed(
    store: ImageStore,
    repository: Reference,
    target: Descriptor,
    *,
    client: RegistryClient | None = None,
) -> None:
    """Fetch `target` (an index or a manifest in `repository`) without its layers."""
    sources = BlobSources(store.content.root.parent / "blob-sources")
    async with client_for(client) as active:

        async def manifest(descriptor: Descriptor) -> None:
            stored = await active.get_manifest(repository, descriptor)
            if not isinstance(stored.value, Manifest):
                raise ImageError(f"{repository.name}@{descriptor.digest} is not an image manifest")
            config = stored.value.config
            if not store.content.exists(config.digest):
                store.content.put(await active.fetch_bytes(repository, config), config.digest)
            for layer in stored.value.layers:
                sources.add(layer.digest, repository.repository())
            store.content.put(stored.raw, stored.digest)

        if mt.is_index(target.media_type):
            top = await active.get_manifest(repository, target)
            if not isinstance(top.value, Index):
                raise ImageError(f"{repository.name}@{target.digest} is not an image index")
            entries = [e for e in top.value.manifests if mt.is_manifest(e.media_type)]
            if len(entries) > MAX_MANIFESTS:
                raise ImageError(f"{repository.name}@{target.digest} lists too many manifests")
            await run_all(manifest(entry) for entry in entries)
            store.content.put(top.raw, top.digest)
        elif mt.is_manifest(target.media_type):
            await manifest(target)
        else:
            raise ImageError(
                f"{repository.name}@{target.digest}: {target.media_type} is not an image"
            )


__all__ = ["fetch_pushed"]
