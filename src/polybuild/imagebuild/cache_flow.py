"""A local solve with `--cache-from` / `--cache-to`: the imported caches' records given to the
solver, and the records the mode selects exported when every platform is solved, each shown
as a step of its own (`importing cache manifest from REF`, `exporting cache to REF`)."""

from __future__ import annotations

from polybuild.image.layer import Layer
from polybuild.image.platform_image import PlatformImage
from polybuild.imagebuild.pipeline import Converted, solve
from polybuild.imagebuild.request import BuildRequest
from polybuild.progress.writer import ProgressWriter
from polybuild.runtime import Runtime
from polybuild.solver.options import FileOps
from polybuild.solver.results import Chain
from polybuild.solver.scheduler import Solver


async def solve_with_cache(
    request: BuildRequest,
    runtime: Runtime,
    converted: Converted,
    progress: ProgressWriter,
    file_ops: FileOps,
) -> tuple[list[PlatformImage], Solver]:
    """`pipeline.solve`, importing and exporting the request's caches around it."""
    if not (request.cache_from or request.cache_to):
        return await solve(request, runtime, converted, progress, file_ops)
    # Only builds that use a cache load the registry client (httpx is slow to import).
    from polybuild.cache.transfer import export_caches, import_caches
    from polybuild.registry.client import RegistryClient

    def warn(message: str) -> None:
        progress.warn(message)

    async with RegistryClient() as client:
        imported = None
        if request.cache_from:
            names = ", ".join(str(s) for s in request.cache_from)
            with progress.vertex("cache-import", f"importing cache manifest from {names}"):
                imported = await import_caches(request.cache_from, client, warn)
        images, solver = await solve(request, runtime, converted, progress, file_ops, imported)
        if request.cache_to:

            async def materialize(chain: tuple[Layer, ...]) -> bool:
                return not await solver.materialize(Chain(chain, ""))

            names = ", ".join(str(s) for s in request.cache_to)
            with progress.vertex("cache-export", f"exporting cache to {names}"):
                await export_caches(
                    request.cache_to,
                    {key: chain.layers for key, chain in solver.records.items()},
                    [root.layers for root in solver.roots],
                    runtime.store.content,
                    client,
                    materialize,
                    warn,
                )
    return images, solver


__all__ = ["solve_with_cache"]
