"""Tiny real images for tests: deterministic layer tars, configs, manifests and indexes."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping, Sequence

from polybuild.image import mediatypes as mt
from polybuild.image.config import ContainerConfig, History, ImageConfig, encode_config
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Index, Manifest, encode_index, encode_manifest
from polybuild.platforms import Platform


def layer_tar(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed layer tar holding `files` (path -> content), sorted, with fixed metadata."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def write_image(
    content: ContentStore,
    platform: Platform,
    files: Mapping[str, bytes] | None = None,
    *,
    cmd: Sequence[str] = ("/bin/sh",),
) -> Descriptor:
    """Store a one-layer image for `platform`; returns its manifest descriptor (with platform)."""
    layer = layer_tar(files if files is not None else {"etc/os": str(platform).encode()})
    layer_digest = content.put(layer)
    config = encode_config(
        ImageConfig(
            architecture=platform.architecture,
            os=platform.os,
            variant=platform.variant,
            config=ContainerConfig(env=("PATH=/usr/bin:/bin",), cmd=tuple(cmd)),
            diff_ids=(layer_digest,),
            history=(History(created_by="COPY . / # buildkit", comment="buildkit.dockerfile.v0"),),
        )
    )
    content.put(config.raw, config.digest)
    manifest = encode_manifest(
        Manifest(
            config=config.descriptor(),
            layers=(Descriptor(mt.OCI_LAYER, layer_digest, len(layer)),),
        )
    )
    content.put(manifest.raw, manifest.digest)
    return manifest.descriptor(platform=platform)


def write_index(
    content: ContentStore,
    platforms: Sequence[Platform],
    files: Mapping[str, bytes] | None = None,
) -> Descriptor:
    """Store a multi-platform image (one manifest per platform under an OCI index)."""
    manifests = tuple(write_image(content, p, files) for p in platforms)
    index = encode_index(Index(manifests=manifests))
    content.put(index.raw, index.digest)
    return index.descriptor()


def blob_digests(content: ContentStore) -> set[Digest]:
    """Every blob in the store."""
    return set(content)
