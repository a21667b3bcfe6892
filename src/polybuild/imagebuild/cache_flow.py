"""`--cache-from` / `--cache-to` around builds on polybuild's own nodes.

Each node imports for itself: this machine's solver is given the `--cache-from` records
(`solve_with_cache`), an ssh node reads them itself. Export happens once per build, on
this machine, after every node has built (`export_build_cache`): the records of all nodes
are merged into one cache, so the nodes of a multi-node build never overwrite each other's
records (docker/buildx#1044). A node's records go into the export only with their layers
in this machine's store (fetched from the node, or from an imported cache, for mode=max).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from polybuild.image.content import ContentStore
from polybuild.image.layer import Layer
from polybuild.image.platform_image import PlatformImage
from polybuild.imagebuild.pipeline import Converted, solve
from polybuild.imagebuild.request import BuildRequest
from polybuild.progress.writer import ProgressWriter
from polybuild.runtime import Runtime
from polybuild.solver.options import FileOps
from polybuild.solver.results import Chain
from polybuild.solver.scheduler import Solver

Records = Mapping[str, tuple[Layer, ...]]


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

    def warn(message: str) -> None:
        progress.warn(message)

    async with RegistryClient() as client:
        names = ", ".join(str(s) for s in request.cache_from)
        with progress.vertex("cache-import", f"importing cache manifest from {names}"):
            imported = await import_caches(request.cache_from, client, warn)
        return await solve(request, runtime, converted, progress, file_ops, imported)


async def exportable_records(solver: Solver, every: bool) -> dict[str, tuple[Layer, ...]]:
    """The solver's records whose layers are in its content store; with `every` (mode=max)
    the layers an imported cache left out are fetched first (a record whose cache fails is
    left out)."""
    records: dict[str, tuple[Layer, ...]] = {}
    for key, chain in solver.records.items():
        present = all(solver.content.exists(x.blob) for x in chain.layers)
        if present or (every and not await solver.materialize(Chain(chain.layers, ""))):
            records[key] = chain.layers
    return records


async def export_build_cache(
    request: BuildRequest,
    records: Records,
    images: Sequence[PlatformImage],
    content: ContentStore,
    progress: ProgressWriter,
) -> None:
    """Write every `--cache-to` of the build from all nodes' records (the images' layers
    tell mode=min which records are the results')."""
    from polybuild.cache.transfer import export_caches
    from polybuild.registry.client import RegistryClient

    def warn(message: str) -> None:
        progress.warn(message)

    async def present(chain: tuple[Layer, ...]) -> bool:
        return all(content.exists(x.blob) for x in chain)

    roots = [tuple(str(x.digest) for x in image.manifest.value.layers) for image in images]
    names = ", ".join(str(s) for s in request.cache_to)
    async with RegistryClient() as client:
        with progress.vertex("cache-export", f"exporting cache to {names}"):
            await export_caches(request.cache_to, records, roots, content, client, present, warn)


__all__ = ["export_build_cache", "exportable_records", "solve_with_cache", "wants_every_step"]
