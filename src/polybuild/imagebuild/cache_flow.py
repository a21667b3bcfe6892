"""`--cache-from` / `--cache-to` around builds on polybuild's own nodes.

Each node imports for itself: this machine's solver is given the `--cache-from` records
(`solve_with_cache`), an ssh node reads them itself. Export happens once per build, on
this machine, after every node has built (`export_build_cache`): the records of all nodes
are merged into one cache, so the nodes of a multi-node build never overwrite each other's
records (docker/buildx#1044). A node's records go into the export only with their layers
in this machine's store (fetched from the node, or from an imported cache, for mode=max).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from polybuild.errors import CacheBlobError
from polybuild.image.content import ContentStore
from polybuild.image.layer import Layer
from polybuild.image.platform_image import PlatformImage
from polybuild.imagebuild.pipeline import Converted, solve
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import format_platform
from polybuild.progress.writer import ProgressWriter
from polybuild.runtime import Runtime
from polybuild.solver.options import FileOps
from polybuild.solver.results import Chain
from polybuild.solver.scheduler import Solver

Records = Mapping[str, tuple[Layer, ...]]
Fetch = Callable[[tuple[Layer, ...]], Awaitable[bool]]


def needs_local_layers(request: BuildRequest) -> bool:
    """Whether the results' layers must be in this machine's store after the solve: every
    output but a push (which finds an imported result's layers in the registry, by HEAD or
    a mount, as BuildKit does), and --check-reproducible. A request without outputs (an ssh
    node's: its client fetches the images' layers from it) keeps them too."""
    if request.check_reproducible or not request.outputs:
        return True
    return any(
        not (output.type.value == "image" and output.push and not output.store)
        for output in request.outputs
    )


def wants_every_step(request: BuildRequest) -> bool:
    """Whether a `--cache-to` asks for mode=max (every step's layers must reach the export)."""
    return any(spec.get("mode") == "max" for spec in request.cache_to)


async def solve_with_cache(
    request: BuildRequest,
    runtime: Runtime,
    converted: Converted,
    progress: ProgressWriter,
    file_ops: FileOps,
) -> tuple[list[PlatformImage], Solver]:
    """`pipeline.solve` with the request's `--cache-from` caches imported."""
    if not request.cache_from:
        return await solve(request, runtime, converted, progress, file_ops)
    # Only builds that use a cache load the registry client (httpx is slow to import).
    from polybuild.cache.transfer import import_caches
    from polybuild.registry.client import RegistryClient
    from polybuild.registry.sources import BlobSources

    def warn(message: str) -> None:
        progress.warn(message)

    async with RegistryClient() as client:
        names = ", ".join(str(s) for s in request.cache_from)
        sources = BlobSources(runtime.store.content.root.parent / "blob-sources")
        with progress.vertex("cache-import", f"importing cache manifest from {names}"):
            imported = await import_caches(request.cache_from, client, warn, sources)
        return await solve(
            request,
            runtime,
            converted,
            progress,
            file_ops,
            imported,
            materialize_roots=needs_local_layers(request),
        )


def exportable_records(solver: Solver) -> dict[str, tuple[Layer, ...]]:
    """Every record of the solve (an imported hit's layers may still be where its cache
    keeps them: the export fetches what it must write, through `fetcher`)."""
    return {key: chain.layers for key, chain in solver.records.items()}


def fetcher(solver: Solver) -> Fetch:
    """Brings a chain's layers into this machine's store (False: its cache failed)."""

    async def fetch(layers: tuple[Layer, ...]) -> bool:
        return not await solver.materialize(Chain(layers, ""))

    return fetch


async def ensure_layers(
    request: BuildRequest, images: Sequence[PlatformImage], content: ContentStore, fetch: Fetch
) -> None:
    """The images' layers where the outputs need them: here, or for a push-only build in
    the registry the push goes to (known from the imported cache's blob sources)."""
    domains = {name.domain for o in request.outputs if o.push for name in o.names}
    push_only = not needs_local_layers(request)
    for image in images:
        layers = zip(image.manifest.value.layers, image.config.value.diff_ids, strict=True)
        missing = [Layer(d, diff) for d, diff in layers if not content.exists(d.digest)]
        if not missing:
            continue
        if push_only and domains:
            from polybuild.registry.sources import BlobSources  # httpx: only when needed

            sources = BlobSources(content.root.parent / "blob-sources")
            if all(sources.get(x.blob, domain) for x in missing for domain in domains):
                continue
        if not await fetch(tuple(missing)):
            raise CacheBlobError(
                f"{format_platform(image.platform)}: the imported cache could not give this "
                "image's layers",
                hint="build again without --cache-from",
            )


async def export_build_cache(
    request: BuildRequest,
    records: Records,
    images: Sequence[PlatformImage],
    content: ContentStore,
    progress: ProgressWriter,
    fetch: Fetch | None = None,
) -> None:
    """Write every `--cache-to` of the build from all nodes' records (the images' layers
    tell mode=min which records are the results'); `fetch` brings layers an imported cache
    kept where they were (a record the target already holds needs none)."""
    from polybuild.cache.transfer import export_caches
    from polybuild.registry.client import RegistryClient

    def warn(message: str) -> None:
        progress.warn(message)

    async def present(chain: tuple[Layer, ...]) -> bool:
        if all(content.exists(x.blob) for x in chain):
            return True
        return fetch is not None and await fetch(chain)

    roots = [tuple(str(x.digest) for x in image.manifest.value.layers) for image in images]
    names = ", ".join(str(s) for s in request.cache_to)
    async with RegistryClient() as client:
        with progress.vertex("cache-export", f"exporting cache to {names}"):
            await export_caches(request.cache_to, records, roots, content, client, present, warn)


__all__ = [
    "ensure_layers",
    "export_build_cache",
    "exportable_records",
    "fetcher",
    "needs_local_layers",
    "solve_with_cache",
    "wants_every_step",
]
