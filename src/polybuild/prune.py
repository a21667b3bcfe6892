"""`polybuild prune`: free the disk space the build cache and unpacked layers take."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import PolybuildError
from polybuild.image.digest import Digest
from polybuild.image.select import platform_manifests
from polybuild.image.walk import read_document
from polybuild.prune_policy import PrunePolicy, disk_free, doomed
from polybuild.runtime import Runtime
from polybuild.solver.cache import CacheStore, cache_path


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What was removed and how many bytes that freed."""

    cache_entries: int
    blobs: int
    layers: int
    cache_mounts: int
    bytes_freed: int


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _remove_tree(runtime: Runtime, path: Path) -> None:
    """Remove a directory tree so that it is there whole or not at all: renamed into a
    scratch directory first (named after this process, so a killed prune's is removed by
    the next command), then deleted. A half-deleted unpacked layer or heredoc directory
    left under its own name would be taken as whole by the next build or run."""
    scratch = runtime.root / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    doomed = scratch / f"step-{os.getpid()}-prune-{secrets.token_hex(4)}"
    try:
        path.rename(doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def _image_diff_ids(runtime: Runtime) -> set[str]:
    from polybuild.image.config import parse_config
    from polybuild.image.manifest import parse_manifest

    content = runtime.store.content
    wanted: set[str] = set()
    for record in runtime.store.records():
        for descriptor, _ in platform_manifests(content, record.target):
            if not content.exists(descriptor.digest):
                continue
            manifest = parse_manifest(read_document(content, descriptor), descriptor.media_type)
            config_desc = manifest.value.config
            if content.exists(config_desc.digest):
                config = parse_config(read_document(content, config_desc), config_desc.media_type)
                wanted.update(str(d) for d in config.value.diff_ids)
    return wanted


def prune(
    runtime: Runtime, *, all_: bool = False, policy: PrunePolicy | None = None
) -> PruneReport:
    """Remove the build cache, blobs and unpacked layers no image needs, and what remote
    builds keep (a node's context caches, a client's context digests); with `all_`, the
    `RUN --mount=type=cache` directories too. A `policy` (--filter until=, --reserved-space,
    --max-used-space, --min-free-space) removes only the records it selects, least recently
    used first, and keeps what the others use. Refused while a build, a run or a remote
    solve is going on."""
    policy = policy or PrunePolicy()
    with runtime.in_use(exclusive=True):
        runtime.cleanup_stale()
        entries = 0
        kept_blobs: set[str] = set()
        kept_layers: set[str] = set()
        if cache_path(runtime.root).exists():
            content = runtime.store.content
            cache = CacheStore(cache_path(runtime.root), content)
            try:
                if policy.empty:
                    entries = cache.clear()
                else:
                    listed = cache.entries()

                    def size_of(blob: str) -> int:
                        try:
                            return content.size(Digest.parse(blob))
                        except PolybuildError:
                            return 0

                    gone = doomed(policy, listed, size_of, disk_free(runtime.root))
                    entries = cache.delete(gone)
                    kept_blobs = {b for key, _, blobs in listed if key not in gone for b in blobs}
                    kept_layers = {d.split(":", 1)[-1] for d in cache.diff_ids()}
            finally:
                cache.close()
        blobs, freed = runtime.store.gc(keep=[Digest.parse(b) for b in kept_blobs])
        keep = {d.split(":", 1)[1] for d in _image_diff_ids(runtime)} | kept_layers
        layers = 0
        layer_root = runtime.layers.root
        if layer_root.is_dir():
            for entry in layer_root.iterdir():
                if entry.is_dir() and entry.name not in keep:
                    freed += _size(entry)
                    _remove_tree(runtime, entry)
                    layers += 1
        inline = runtime.root / "inline"
        if inline.is_dir():
            freed += _size(inline)
            _remove_tree(runtime, inline)
        # What remote builds keep: a node's context files and its copies of clients'
        # contexts, a client's digests of its context files (all rebuilt when needed).
        for kept in ("context", "contexts", "context-hashes"):
            path = runtime.root / "remote" / kept
            if path.is_dir():
                freed += _size(path)
                _remove_tree(runtime, path)
        mounts = 0
        cache_mounts = runtime.root / "cache-mounts"
        if all_ and cache_mounts.is_dir():
            for entry in cache_mounts.iterdir():
                freed += _size(entry) if entry.is_dir() else 0
                if entry.is_dir():
                    _remove_tree(runtime, entry)
                    mounts += 1
                else:
                    entry.unlink(missing_ok=True)
        return PruneReport(entries, blobs, layers, mounts, freed)
