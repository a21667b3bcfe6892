"""`polybuild import`: a root filesystem tarball becomes one platform's image in the store."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polybuild.image import ContainerConfig, Descriptor, History, ImageConfig, ImageStore
from polybuild.image.compose import with_platform_manifest
from polybuild.image.config import encode_config, rfc3339
from polybuild.image.manifest import Manifest, encode_manifest
from polybuild.image.reference import Reference, parse
from polybuild.layers import Compression, LayerFormat, directory_layer, unpack_layer
from polybuild.platforms import Platform, format_platform


@dataclass(frozen=True, slots=True)
class Imported:
    """The result of an import: the name, the new index and this platform's manifest."""

    name: Reference
    index: Descriptor
    manifest: Descriptor
    platform: Platform


def created_timestamp() -> str:
    """RFC 3339 creation time: SOURCE_DATE_EPOCH when set (reproducible), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return rfc3339(int(epoch) if epoch and epoch.isdigit() else int(time.time()))


def import_rootfs(
    store: ImageStore,
    tarball: BinaryIO,
    name: str,
    platform: Platform,
    *,
    source: str = "-",
    changes: ContainerConfig | None = None,
    compression: Compression = Compression.GZIP,
) -> Imported:
    """Import a root filesystem tarball (plain, gzip or zstd) as `platform`'s variant of `name`.

    The tar is unpacked safely (nothing escapes the scratch directory) and written again as a
    deterministic layer, so the same files always give the same digest. If `name` already
    holds an image, this platform is added to its index (replacing a variant of the same
    platform) and the name is moved to the new index.
    """
    ref = parse(name)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    scratch_parent = store.root / "tmp"
    scratch_parent.mkdir(parents=True, exist_ok=True)
    # step-<pid>- like the solver's scratch dirs: a killed import's is found and removed.
    scratch = Path(tempfile.mkdtemp(prefix=f"step-{os.getpid()}-import-", dir=scratch_parent))
    try:
        unpack_layer(tarball, scratch, trusted=True)
        with store.lease():
            with store.content.writer() as writer:
                layer = directory_layer(
                    scratch,
                    writer,  # type: ignore[arg-type]
                    LayerFormat(
                        compression,
                        source_date_epoch=int(epoch) if epoch and epoch.isdigit() else None,
                    ),
                )
            config = encode_config(
                ImageConfig(
                    architecture=platform.architecture,
                    os=platform.os,
                    variant=platform.variant,
                    created=created_timestamp(),
                    config=changes or ContainerConfig(),
                    diff_ids=(layer.diff_id,),
                    history=(
                        History(
                            created=created_timestamp(),
                            created_by=f"polybuild import {source}",
                            comment="Imported from " + source,
                        ),
                    ),
                )
            )
            store.content.put(config.raw, config.digest)
            manifest = encode_manifest(
                Manifest(config=config.descriptor(), layers=(layer.descriptor,))
            )
            store.content.put(manifest.raw, manifest.digest)
            existing = _existing_target(store, ref)
            index = with_platform_manifest(store.content, existing, manifest.descriptor(), platform)
            store.content.put(index.raw, index.digest)
            full_name = store.tag(ref, index.descriptor())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Imported(full_name, index.descriptor(), manifest.descriptor(platform), platform)


def _existing_target(store: ImageStore, ref: Reference) -> Descriptor | None:
    return next((r.target for r in store.records() if r.name == ref), None)


def describe(result: Imported) -> str:
    return f"{result.name.familiar()} {format_platform(result.platform)} {result.manifest.digest}"
