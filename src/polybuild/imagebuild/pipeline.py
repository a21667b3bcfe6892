"""The build pipeline: convert the Dockerfile per platform, solve all together, assemble, export."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from polybuild.dockerfile import BuildGraph, BuildOptions, Dockerfile, convert, load
from polybuild.dockerfile.ignore import ignore_file_for, load_patterns
from polybuild.dockerfile.lint.report import excerpt
from polybuild.errors import StepFailedError, UsageError
from polybuild.fileops.context import load_hash_cache, save_hash_cache
from polybuild.graph import ops
from polybuild.graph.devices import DeviceGrants
from polybuild.image.platform_image import PlatformImage
from polybuild.image.writer import store_platform_image
from polybuild.imagebuild import internal_steps as steps
from polybuild.imagebuild.base_pulls import BaseImagePuller
from polybuild.imagebuild.baseimages import BaseImageResolver, Puller
from polybuild.imagebuild.dockerfile_file import read_dockerfile
from polybuild.imagebuild.named_contexts import (
    frontend_dirs,
    frontend_images,
    layout_images,
    solver_dirs,
)
from polybuild.imagebuild.names import multi_platform_requested, stage_steps, step_names
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform
from polybuild.progress.writer import ProgressWriter
from polybuild.runtime import Runtime
from polybuild.solver.cache import CacheStore, cache_path
from polybuild.solver.options import ImportedCache, default_jobs
from polybuild.solver.results import Chain
from polybuild.solver.scheduler import FileOps, SolveOptions, Solver


@dataclass(frozen=True, slots=True)
class Converted:
    """The frontend's work for a request: one graph per target platform."""

    dockerfile_name: str
    graphs: tuple[BuildGraph, ...]
    ignore_patterns: tuple[str, ...]
    resolver: BaseImageResolver
    dockerfile: Dockerfile | None = None  # for step names and a failed step's excerpt
    source: str = ""


async def convert_all(
    request: BuildRequest,
    runtime: Runtime,
    puller: Puller | None,
    progress: ProgressWriter | None = None,
) -> Converted:
    """Parse once, then convert for every target platform at the same time.

    The frontend asks for base images synchronously, so each platform converts in a worker
    thread; a missing base image is pulled on this event loop, once per (ref, platform)
    however many platforms ask for it, so the platforms' pulls overlap.
    """
    given = request.dockerfile if request.dockerfile_text is None else None
    with steps.load_definition(progress, given.name if given else "Dockerfile") as transferred:
        data, name, path = read_dockerfile(request)
        transferred(len(data))
    with steps.load_dockerignore(progress, ignore_file_for(request.context, path)):
        patterns = load_patterns(request.context, path)
    dockerfile = load(data, filename=name)
    layouts = await asyncio.to_thread(layout_images, request, runtime.store.content)
    # A build's own puller also fetches every needed stage's base before its stage converts.
    prefetcher = puller.start if isinstance(puller, BaseImagePuller) else None
    resolver = BaseImageResolver(
        runtime.store, puller, request.pull, layouts=layouts, prefetcher=prefetcher
    )
    named_images, named_dirs = frontend_images(request), frontend_dirs(request)
    multi = multi_platform_requested(request.platforms, request.build_args)
    resolve, prefetch = steps.metadata_steps(resolver, progress, multi, resolver.prefetch)

    def convert_one(platform: Platform) -> BuildGraph:
        options = BuildOptions(
            build_args=dict(request.build_args),
            target=request.target,
            target_platform=platform,
            filename=name,
            labels=dict(request.labels),
            ignore_patterns=patterns,
            named_images=named_images,
            named_dirs=named_dirs,
        )
        return convert(
            dockerfile, options, platform, resolve_image=resolve, prefetch_image=prefetch
        )

    # A pool of their own: a platform's frontend blocks while its base image is pulled, and
    # the pull needs the loop's default executor (to_thread); sharing that pool, six or
    # more platforms on a 2-core machine took every thread and waited forever.
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(len(request.platforms), "frontend") as pool:
        graphs = await asyncio.gather(
            *(
                # each with this task's context variables, as to_thread gives them (the pull
                # progress observer rides in one)
                loop.run_in_executor(pool, contextvars.copy_context().run, convert_one, platform)
                for platform in request.platforms
            )
        )
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return Converted(name, tuple(graphs), patterns, resolver, dockerfile, text)


def check_entitlements(request: BuildRequest, graphs: tuple[BuildGraph, ...]) -> None:
    """RUN --security=insecure and RUN --network=host need `--allow`, as BuildKit requires
    (the flags themselves were checked when the request was made)."""
    allowed = request.entitlements
    for graph in graphs:
        for op in graph.ops():
            if not isinstance(op, ops.Exec):
                continue
            if op.security == "insecure" and "security.insecure" not in allowed:
                raise UsageError(
                    f"{op.description or 'RUN'}: --security=insecure is not allowed",
                    hint="grant it with --allow security.insecure (the step gets every "
                    "capability and the host's devices)",
                )
            if op.network == "host" and "network.host" not in allowed:
                raise UsageError(
                    f"{op.description or 'RUN'}: --network=host is not allowed",
                    hint="grant it with --allow network.host (the step then shares this "
                    "machine's network, including services bound to its 127.0.0.1)",
                )
    check_devices(request, graphs)


def check_devices(request: BuildRequest, graphs: tuple[BuildGraph, ...]) -> None:
    """RUN --device: each device registered in this node's CDI specs and granted (`--allow
    device[=NAME]`, or auto-allowed by its spec) before any step runs."""
    wanting = [op for g in graphs for op in g.ops() if isinstance(op, ops.Exec) and op.devices]
    if not wanting:
        return
    from polybuild.executor.cdi import devices_for, load_devices

    grants = DeviceGrants.from_entitlements(request.entitlements)
    known = load_devices()
    for op in wanting:
        try:
            devices_for(op.devices, grants, known)
        except UsageError as exc:
            raise UsageError(f"{op.description or 'RUN'}: {exc.message}", hint=exc.hint) from None


def no_cache_ops(graphs: tuple[BuildGraph, ...], stages: tuple[str, ...]) -> frozenset[str]:
    """Digests of the named stages' own steps (--no-cache-filter): not their parents' or the
    stages they copy from, as BuildKit."""
    wanted = set(stages)
    found: set[str] = set()
    for graph in graphs:
        steps = stage_steps(graph)
        for stage in graph.stages:
            if stage.name in wanted or str(stage.index) in wanted:
                found.update(op.digest for op in steps[stage.index])
    return frozenset(found)


async def solve(
    request: BuildRequest,
    runtime: Runtime,
    converted: Converted,
    progress: ProgressWriter | None,
    file_ops: FileOps,
    imported: ImportedCache | None = None,
    materialize_roots: bool = True,
) -> tuple[list[PlatformImage], Solver]:
    """Run every platform's graph; returns each platform's stored image and the solver.
    `imported` are the records of `--cache-from` caches."""
    check_entitlements(request, converted.graphs)
    epoch = request.source_date_epoch
    options = SolveOptions(
        context_dir=request.context.resolve(),
        ignore_patterns=converted.ignore_patterns,
        named_dirs=solver_dirs(request),
        no_cache=request.no_cache,
        no_cache_ops=no_cache_ops(converted.graphs, request.no_cache_filter),
        jobs=request.jobs or default_jobs(),
        source_date_epoch=epoch,
        secrets=request.secrets,
        network=request.network,
        extra_hosts=request.add_hosts,
        ulimits=request.ulimits,
        shm_size=request.shm_size,
        devices=DeviceGrants.from_entitlements(request.entitlements),
    )
    multi = multi_platform_requested(request.platforms, request.build_args)
    names = step_names(list(converted.graphs), multi, converted.dockerfile)
    steps.from_steps(progress, converted.graphs, names, converted.resolver.resolved, runtime.store)
    steps.load_context(progress, converted.graphs, request.context, converted.ignore_patterns)
    cache = CacheStore(cache_path(runtime.root), runtime.store.content)
    solver = Solver(
        runtime,
        runtime.store.content,
        cache,
        options,
        base_images=converted.resolver.resolved,
        names=names,
        progress=progress,
        file_ops=file_ops,
        imported=imported,
        materialize_roots=materialize_roots,
    )
    hashes = runtime.root / "cache" / "context-hashes"
    load_hash_cache(hashes)
    try:
        results = await solver.solve_all([g.target.root for g in converted.graphs])
    except StepFailedError as exc:
        if exc.lines is not None and not exc.excerpt:  # BuildKit's Dockerfile:N lines
            exc.excerpt = excerpt(converted.dockerfile_name, converted.source, (exc.lines,))
        raise
    finally:
        cache.close()
        save_hash_cache(hashes)
    images = []
    for graph, result in zip(converted.graphs, results, strict=True):
        assert isinstance(result, Chain)
        images.append(
            store_platform_image(
                runtime.store.content,
                graph.config,
                result,
                graph.target_platform,
                epoch,
                _inline_cache(request, solver, result),
            )
        )
    return images, solver


def _inline_cache(request: BuildRequest, solver: Solver, result: Chain) -> str:
    """`--cache-to type=inline`: the records that made `result`, for its image's config."""
    if not any(spec.type == "inline" for spec in request.cache_to):
        return ""
    from polybuild.cache.inline import inline_value

    return inline_value({key: chain.layers for key, chain in solver.records.items()}, result.layers)


def platforms_of(images: list[PlatformImage]) -> tuple[Platform, ...]:
    return tuple(image.platform for image in images)
