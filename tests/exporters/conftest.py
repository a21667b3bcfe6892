"""A three-platform build result made of real gzip layers (with a whiteout) for exporter tests."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from polybuild.image import mediatypes as mt
from polybuild.image.config import ContainerConfig, History, ImageConfig, encode_config
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Manifest, encode_manifest
from polybuild.image.platform_image import ExportSource, PlatformImage
from polybuild.image.store import ImageStore
from polybuild.layers import Compression, LayerWriter
from polybuild.platforms import Platform

PLATFORMS = (
    Platform("linux", "amd64"),
    Platform("linux", "arm64"),
    Platform("linux", "arm", "v7"),
)


def layer_tar(files: Mapping[str, bytes | None]) -> bytes:
    """A layer tar: path -> bytes, or None for a directory; sorted, fixed metadata."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o755 if name.startswith("bin/") else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def put_layer(
    content: ContentStore, tar: bytes, compression: Compression
) -> tuple[Descriptor, Digest]:
    with content.writer() as out:
        with LayerWriter(cast(BinaryIO, out), compression=compression) as writer:
            writer.write(tar)
        layer = writer.finish()
    return layer.descriptor, layer.diff_id


def platform_image(
    content: ContentStore, platform: Platform, compression: Compression = Compression.GZIP
) -> PlatformImage:
    """Two layers: a base with a file the second layer whites out."""
    base = layer_tar(
        {
            "etc": None,
            "etc/os": f"{platform}\n".encode(),
            "bin": None,
            "bin/tool": b"#!/bin/sh\necho tool\n",
            "tmp": None,
            "tmp/deleteme": b"gone in layer 2",
        }
    )
    top = layer_tar({"tmp": None, "tmp/.wh.deleteme": b"", "etc": None, "etc/extra": b"extra\n"})
    layers = [put_layer(content, base, compression), put_layer(content, top, compression)]
    config = encode_config(
        ImageConfig(
            architecture=platform.architecture,
            os=platform.os,
            variant=platform.variant,
            config=ContainerConfig(env=("PATH=/bin",), cmd=("/bin/tool",)),
            diff_ids=tuple(diff for _, diff in layers),
            history=(History(created_by="COPY base /"), History(created_by="RUN rm")),
        )
    )
    content.put(config.raw, config.digest)
    manifest = encode_manifest(
        Manifest(config=config.descriptor(), layers=tuple(d for d, _ in layers))
    )
    content.put(manifest.raw, manifest.digest)
    return PlatformImage(platform, manifest, config)


def make_source(
    content: ContentStore,
    platforms: tuple[Platform, ...] = PLATFORMS,
    compression: Compression = Compression.GZIP,
) -> ExportSource:
    return ExportSource(content, tuple(platform_image(content, p, compression) for p in platforms))


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "root")


@pytest.fixture
def source(store: ImageStore) -> ExportSource:
    return make_source(store.content)


@pytest.fixture
def single(store: ImageStore) -> ExportSource:
    return make_source(store.content, (Platform("linux", "arm64"),))


__all__ = ["PLATFORMS", "layer_tar", "make_source", "mt", "platform_image"]


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "stores"
