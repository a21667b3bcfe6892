"""`--cache-from` and `--cache-to` for a build on polybuild's own solver: what to import
before the solve, and what to export after it.

Import reads each source's manifest and config only; a source that cannot be read (missing,
unreachable, not a cache) is a warning and the build goes on, as buildx. Export writes the
records the mode selects, merged with what the target already holds (so builds of other
platforms, or other nodes, add to one cache instead of replacing it); a failed export fails
the build unless `ignore-error=true`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from polybuild.cache.backends import CacheBackend, backend_for, check_type
from polybuild.cache.config import Record, merge
from polybuild.cache.imported import ImportedCache
from polybuild.cache.registry_cache import RegistryCache
from polybuild.cache.spec import CacheSpec, CacheType
from polybuild.errors import ImageError, PolybuildError, RegistryError, UsageError
from polybuild.image.content import ContentStore
from polybuild.image.layer import Layer
from polybuild.registry.client import RegistryClient
from polybuild.registry.sources import BlobSources

Warn = Callable[[str], None]
_TRUE = ("true", "1")


def _flag(spec: CacheSpec, key: str, default: bool) -> bool:
    value = spec.get(key).lower()
    if not value:
        return default
    if value not in ("true", "false", "1", "0"):
        raise UsageError(f"{spec}: {key} must be true or false, not {value!r}")
    return value in _TRUE


def check_specs(to: Sequence[CacheSpec], from_: Sequence[CacheSpec]) -> None:
    """UsageError for what polybuild's own nodes cannot do with these values."""
    for spec in (*to, *from_):
        check_type(spec)
    for spec in from_:
        if spec.type is CacheType.INLINE:
            raise UsageError(
                f"--cache-from {spec}: an inline cache is read from its image",
                hint="use --cache-from IMAGE (the image pushed with --cache-to type=inline)",
            )
    for spec in to:
        if not _flag(spec, "oci-mediatypes", True) and _flag(spec, "image-manifest", False):
            raise UsageError(f"--cache-to {spec}: image-manifest=true needs OCI media types")


async def import_caches(
    specs: Sequence[CacheSpec],
    client: RegistryClient,
    warn: Warn,
    sources: BlobSources | None = None,
) -> ImportedCache | None:
    """The records of every readable source (None when none could be read). A registry
    cache's layers are recorded in `sources` as held by its repository, so a push of an
    image made of them finds them there (HEAD, or a mount) without downloading them."""
    found: list[tuple[CacheBackend, dict[str, Record]]] = []
    for spec in specs:
        backend = backend_for(spec, client)
        try:
            records = await backend.read()
        except (PolybuildError, OSError) as exc:
            warn(f"--cache-from {spec}: not imported: {_why(exc)}")
            continue
        found.append((backend, records))
        if sources is not None and isinstance(backend, RegistryCache):
            repository = backend.ref.repository()
            for digest in {x.blob for r in records.values() for x in r.chain}:
                sources.add(digest, repository)
    return ImportedCache(found) if found else None


def select(
    mode: str, records: Mapping[str, tuple[Layer, ...]], roots: Sequence[Sequence[str]]
) -> dict[str, Record]:
    """`mode=max`: every step's record; `mode=min`: only those whose chain is a prefix of a
    result (`roots`: each image's layer blob digests; the steps whose layers they hold)."""
    chosen: dict[str, Record] = {}
    results = [tuple(root) for root in roots]
    for key, chain in records.items():
        if not chain:
            continue
        blobs = tuple(str(x.blob) for x in chain)
        if mode == "max" or any(r[: len(blobs)] == blobs for r in results):
            chosen[key] = Record(key, chain)
    return chosen


async def export_caches(
    specs: Sequence[CacheSpec],
    records: Mapping[str, tuple[Layer, ...]],
    roots: Sequence[Sequence[str]],
    content: ContentStore,
    client: RegistryClient,
    materialize: Callable[[tuple[Layer, ...]], Awaitable[bool]],
    warn: Warn,
) -> None:
    """Write each `--cache-to`; its records' layers are fetched first where an imported
    cache left them out (a record whose layers cannot be had is left out, warned)."""
    for spec in specs:
        if spec.type is CacheType.INLINE:
            continue  # written into the images' configs (cache.inline)
        mode = spec.get("mode", "min") or "min"
        compression = spec.get("compression", "gzip") or "gzip"
        if compression != "gzip" or _flag(spec, "force-compression", False):
            warn(f"--cache-to {spec}: layers are exported as they were built (gzip)")
        if not _flag(spec, "oci-mediatypes", True):
            warn(f"--cache-to {spec}: the cache is written with OCI media types")
        chosen = select(mode, records, roots)
        backend = backend_for(spec, client)
        try:
            existing = await backend.read()
        except (PolybuildError, OSError):
            existing = {}  # nothing there yet (or not a cache): written anew
        # A record the target holds already needs no layer from here (they are there).
        usable = {
            k: r for k, r in chosen.items() if existing.get(k) == r or await materialize(r.chain)
        }
        try:
            image_manifest = _flag(spec, "image-manifest", _flag(spec, "oci-mediatypes", True))
            await backend.write(merge(existing, usable), content, image_manifest=image_manifest)
        except (PolybuildError, OSError) as exc:
            if _flag(spec, "ignore-error", False):
                warn(f"--cache-to {spec}: not exported (ignore-error=true): {_why(exc)}")
                continue
            error = RegistryError if isinstance(backend, RegistryCache) else ImageError
            raise error(
                f"--cache-to {spec}: the cache could not be exported: {_why(exc)}",
                hint="fix the destination, or add ignore-error=true to build without it",
            ) from exc


def _why(exc: BaseException) -> str:
    return exc.message if isinstance(exc, PolybuildError) else str(exc)


__all__ = ["check_specs", "export_caches", "import_caches", "select"]
