"""The artifact that carries a cache, as BuildKit lays it out: an OCI image manifest whose
config is the cache config and whose layers are the cached layer blobs (`image-manifest=true`,
BuildKit's default), or an index listing the layer blobs and the config
(`image-manifest=false`). Both are read; each layer descriptor carries its uncompressed
digest in `containerd.io/uncompressed`, as BuildKit writes it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from polybuild.cache.config import MEDIA_TYPE, Record
from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.image.manifest import (
    Index,
    Manifest,
    Stored,
    encode_index,
    encode_manifest,
    parse_manifest_or_index,
)

UNCOMPRESSED = "containerd.io/uncompressed"


@dataclass(frozen=True, slots=True)
class CacheArtifact:
    """What a cache manifest names: its config's descriptor and the layer blobs it lists."""

    config: Descriptor
    layers: tuple[Descriptor, ...]

    def known(self) -> dict[str, Descriptor]:
        return {str(d.digest): d for d in self.layers}


def layers_of(records: Iterable[Record]) -> tuple[Layer, ...]:
    """Every distinct layer of `records`, in a stable order (by blob digest)."""
    found: dict[str, Layer] = {}
    for record in records:
        for layer in record.chain:
            found.setdefault(str(layer.blob), layer)
    return tuple(found[k] for k in sorted(found))


def make_manifest(
    config: bytes, layers: Iterable[Layer], *, image_manifest: bool = True
) -> tuple[Descriptor, Stored[Manifest] | Stored[Index]]:
    """The cache's top document (and the config's descriptor) for `config` and `layers`."""
    config_descriptor = Descriptor(MEDIA_TYPE, Digest.of(config), len(config))
    blobs = tuple(
        Descriptor(
            layer.descriptor.media_type,
            layer.blob,
            layer.descriptor.size,
            annotations={UNCOMPRESSED: str(layer.diff_id)},
        )
        for layer in layers
    )
    if image_manifest:
        return config_descriptor, encode_manifest(Manifest(config_descriptor, blobs))
    return config_descriptor, encode_index(Index((*blobs, config_descriptor)))


def read_manifest(raw: bytes, media_type: str | None) -> CacheArtifact:
    """The config and layers a cache manifest or index lists; ImageError when it is not one
    (an image pushed under the cache's name, say)."""
    stored = parse_manifest_or_index(raw, media_type)
    if isinstance(stored.value, Manifest):
        if stored.value.config.media_type != MEDIA_TYPE:
            kind = stored.value.config.media_type
            raise ImageError(f"it is not a build cache (its config is {kind})")
        return CacheArtifact(stored.value.config, stored.value.layers)
    configs = [d for d in stored.value.manifests if d.media_type == MEDIA_TYPE]
    if len(configs) != 1:
        raise ImageError("it is not a build cache (no cache config in the index)")
    layers = tuple(d for d in stored.value.manifests if mt.is_layer(d.media_type))
    return CacheArtifact(configs[0], layers)


__all__ = ["UNCOMPRESSED", "CacheArtifact", "layers_of", "make_manifest", "read_manifest"]
