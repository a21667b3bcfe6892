"""The build pipeline: convert the Dockerfile per platform, solve all together, assemble, export."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from polybuild.dockerfile import BuildGraph, BuildOptions, convert, load
from polybuild.dockerfile.ignore import load_patterns
from polybuild.errors import UsageError
from polybuild.exporters.assemble import PlatformImage
from polybuild.fileops.context import load_hash_cache, save_hash_cache
from polybuild.graph import ops
from polybuild.imagebuild.assemble import store_platform_image
from polybuild.imagebuild.baseimages import BaseImageResolver, Puller
from polybuild.imagebuild.names import stage_steps, step_names
from polybuild.imagebuild.request import BuildRequest, parse_secrets
from polybuild.platforms import Platform, default_platform
from polybuild.progress.writer import ProgressWriter
from polybuild.runtime import Runtime
from polybuild.solver.cache import CacheStore, cache_path
from polybuild.solver.results import Chain
from polybuild.solver.scheduler import FileOps, SolveOptions, Solver


@dataclass(frozen=True, slots=True)
class Converted:
    """The frontend's work for a request: one graph per target platform."""

    dockerfile_name: str
    graphs: tuple[BuildGraph, ...]
    ignore_patterns: tuple[str, ...]
    resolver: BaseImageResolver


def source_date_epoch(request: BuildRequest) -> int | None:
    """SOURCE_DATE_EPOCH from --build-arg or the environment (BuildKit reads both)."""
    value = request.build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, not {value!r}")
    return int(value)


def read_dockerfile(request: BuildRequest) -> tuple[bytes, str, Path]:
    """The Dockerfile's bytes, the name errors use, and its path (for Dockerfile.dockerignore)."""
    if not request.context.is_dir():
        raise UsageError(
            f"unable to prepare context: path {str(request.context)!r} not found",
            hint="give the build context directory as the last argument",
        )
    if request.dockerfile_text is not None:
        return request.dockerfile_text, "Dockerfile", request.context / "Dockerfile"
    path = request.dockerfile or request.context / "Dockerfile"
    try:
        return path.read_bytes(), path.name, path
    except OSError as exc:
        raise UsageError(
            f"failed to read dockerfile: open {path}: {exc.strerror}", hint="give its path with -f"
        ) from exc


def convert_all(request: BuildRequest, store_runtime: Runtime, puller: Puller | None) -> Converted:
    """Parse once, then convert for every target platform with shared base-image resolution."""
    data, name, path = read_dockerfile(request)
    patterns = load_patterns(request.context, path)
    epoch = source_date_epoch(request)
    build_args = dict(request.build_args)
    if epoch is not None:
        build_args.setdefault("SOURCE_DATE_EPOCH", str(epoch))
    dockerfile = load(data, filename=name)
    resolver = BaseImageResolver(store_runtime.store, puller, request.pull)
    platforms = request.platforms or (default_platform(),)
    graphs = []
    for platform in platforms:
        options = BuildOptions(
            build_args=build_args,
            target=request.target,
            target_platform=platform,
            filename=name,
            labels=dict(request.labels),
            ignore_patterns=patterns,
        )
        graphs.append(convert(dockerfile, options, platform, resolve_image=resolver))
    return Converted(name, tuple(graphs), patterns, resolver)


ENTITLEMENTS = ("security.insecure", "network.host")


def check_entitlements(request: BuildRequest, graphs: tuple[BuildGraph, ...]) -> None:
    """RUN --security=insecure and the host's network need `--allow`, as BuildKit requires."""
    for value in request.allow:
        for item in value.split(","):
            if item.strip() not in ENTITLEMENTS:
                raise UsageError(
                    f"--allow: unknown entitlement {item.strip()!r}",
                    hint="entitlements: " + ", ".join(ENTITLEMENTS),
                )
    allowed = {item.strip() for value in request.allow for item in value.split(",")}
    if request.network == "host" and "network.host" not in allowed:
        raise UsageError(
            "--network=host is not allowed",
            hint="grant it with --allow network.host (RUN steps then share this machine's "
            "network, including services bound to its 127.0.0.1)",
        )
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


def solve(
    request: BuildRequest,
    runtime: Runtime,
    converted: Converted,
    progress: ProgressWriter | None,
    file_ops: FileOps,
) -> tuple[list[PlatformImage], Solver]:
    """Run every platform's graph; returns each platform's stored image and the solver."""
    check_entitlements(request, converted.graphs)
    epoch = source_date_epoch(request)
    options = SolveOptions(
        context_dir=request.context.resolve(),
        ignore_patterns=converted.ignore_patterns,
        no_cache=request.no_cache,
        no_cache_ops=no_cache_ops(converted.graphs, request.no_cache_filter),
        jobs=request.jobs or os.cpu_count() or 2,
        source_date_epoch=epoch,
        secrets=parse_secrets(request.secrets, request.ssh),
        network=request.network,
    )
    cache = CacheStore(cache_path(runtime.root), runtime.store.content)
    solver = Solver(
        runtime,
        cache,
        options,
        base_images=converted.resolver.resolved,
        names=step_names(list(converted.graphs), len(converted.graphs) > 1),
        progress=progress,
        file_ops=file_ops,
    )
    hashes = runtime.root / "cache" / "context-hashes"
    load_hash_cache(hashes)
    try:
        results = asyncio.run(solver.solve_all([g.target.root for g in converted.graphs]))
    finally:
        cache.close()
        save_hash_cache(hashes)
    images = []
    for graph, result in zip(converted.graphs, results, strict=True):
        assert isinstance(result, Chain)
        images.append(
            store_platform_image(
                runtime.store.content, graph.config, result, graph.target_platform, epoch
            )
        )
    return images, solver


def platforms_of(images: list[PlatformImage]) -> tuple[Platform, ...]:
    return tuple(image.platform for image in images)
