"""What this machine's data root keeps for builds, as cache records like a BuildKit
daemon's (`polybuild du` on polybuild's own node), so that buildx's table and filters apply
to both: each build cache record (type regular; its size is the layer it added; shared when
a stored image uses that layer too), each unpacked layer (regular, shared when a stored
image uses it), each `RUN --mount=type=cache` directory (exec.cachemount, mutable) and
what remote builds keep of contexts (source.local, mutable). Ids are the first 25
characters of the record's digest or directory name (BuildKit's ids are 25 characters)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from polybuild.buildkit.records import CacheRecord
from polybuild.errors import PolybuildError
from polybuild.image.digest import Digest
from polybuild.image.store import ImageStore
from polybuild.solver.cache import CacheStore, cache_path

_ID_LENGTH = 25


def _tree(path: Path) -> tuple[int, float | None]:
    """Bytes of the files under `path` and its latest modification time."""
    total, latest = 0, None
    for dirpath, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                stat = os.lstat(os.path.join(dirpath, name))
                total += stat.st_size
                latest = max(latest or 0.0, stat.st_mtime)
    with contextlib.suppress(OSError):
        latest = latest or path.stat().st_mtime
    return total, latest


def _short(text: str) -> str:
    return text.removeprefix("sha256:")[:_ID_LENGTH]


def _cache_records(root: Path, store: ImageStore, in_images: set[str]) -> list[CacheRecord]:
    if not cache_path(root).exists():
        return []
    cache = CacheStore(cache_path(root), store.content)
    try:
        entries = cache.entries()
    finally:
        cache.close()
    records = []
    for key, used, blobs in entries:
        size = 0
        if blobs:
            with contextlib.suppress(PolybuildError, ValueError):
                size = store.content.size(Digest.parse(blobs[-1]))
        records.append(
            CacheRecord(
                id=_short(key),
                size=size,
                in_use=False,
                mutable=False,
                shared=bool(blobs) and blobs[-1] in in_images,
                description=f"build cache of layer {_short(blobs[-1])}" if blobs else "",
                record_type="regular",
                last_used=used,
            )
        )
    return records


def _directory_records(
    parent: Path, record_type: str, description: str, *, mutable: bool, shared: set[str]
) -> list[CacheRecord]:
    if not parent.is_dir():
        return []
    records = []
    for entry in sorted(parent.iterdir()):
        if not entry.is_dir():
            continue
        size, used = _tree(entry)
        records.append(
            CacheRecord(
                id=_short(entry.name),
                size=size,
                in_use=False,
                mutable=mutable,
                shared=entry.name in shared,
                description=description.format(name=entry.name),
                record_type=record_type,
                last_used=used,
            )
        )
    return records


def _image_layers(store: ImageStore) -> tuple[set[str], set[str]]:
    """The layer blobs and (hex) diff ids of every stored image."""
    from polybuild.image.config import parse_config
    from polybuild.image.manifest import parse_manifest
    from polybuild.image.select import platform_manifests
    from polybuild.image.walk import read_document

    blobs: set[str] = set()
    diff_ids: set[str] = set()
    content = store.content
    for record in store.records():
        for descriptor, _ in platform_manifests(content, record.target):
            if not content.exists(descriptor.digest):
                continue
            manifest = parse_manifest(read_document(content, descriptor), descriptor.media_type)
            blobs.update(str(layer.digest) for layer in manifest.value.layers)
            config = manifest.value.config
            if content.exists(config.digest):
                parsed = parse_config(read_document(content, config), config.media_type)
                diff_ids.update(str(d).removeprefix("sha256:") for d in parsed.value.diff_ids)
    return blobs, diff_ids


def local_records(root: Path) -> list[CacheRecord]:
    """The data root's records (see the module's docstring), in no particular order."""
    store = ImageStore(root)
    blobs, diff_ids = _image_layers(store)
    records = _cache_records(root, store, blobs)
    records += _directory_records(
        root / "layers", "regular", "unpacked layer sha256:{name}", mutable=False, shared=diff_ids
    )
    records += _directory_records(
        root / "cache-mounts", "exec.cachemount", "cache mount {name}", mutable=True, shared=set()
    )
    for kept in ("context", "contexts", "context-hashes"):
        records += _directory_records(
            root / "remote" / kept, "source.local", "local source for context",
            mutable=True, shared=set(),
        )  # fmt: skip
    return records


__all__ = ["local_records"]
