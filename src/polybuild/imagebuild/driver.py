"""The node seam: a `Driver` builds some of a request's platforms on one builder node.

The build plans platform -> node with the pure `builders.resolve_nodes`, asks each node's
driver to build its platforms (all drivers at once, on one event loop), and exports what
comes back as one image; exporters never know which node built a manifest. `LocalDriver`
builds on this machine; `remote_driver.RemoteDriver` on an ssh node.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from polybuild.builders import Builder, Detected, Node, resolve_nodes
from polybuild.errors import NodeUnreachableError, UsageError
from polybuild.image.layer import Layer
from polybuild.image.platform_image import PlatformImage
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform, only_strict
from polybuild.progress.writer import ProgressWriter
from polybuild.tasks import first_error

if TYPE_CHECKING:
    from polybuild.imagebuild.baseimages import Puller, UsedImage
    from polybuild.imagebuild.pipeline import Converted
    from polybuild.runtime import Runtime
    from polybuild.solver.scheduler import Solver


@dataclass(frozen=True, slots=True)
class NodeBuild:
    """What a node built: one stored image per platform asked (in that order) and its steps."""

    images: tuple[PlatformImage, ...]
    executed: tuple[str, ...]  # op digests that ran (not cached)
    emulated_seconds: tuple[tuple[str, float], ...]  # (op digest, seconds) under QEMU
    # Build cache records (cache key -> layer chain) whose layers are in this machine's
    # store, for `--cache-to`; every node's go into one export.
    records: Mapping[str, tuple[Layer, ...]] = field(default_factory=dict)
    # Brings layers that an imported cache kept where they were into this machine's store
    # (False when it cannot); None: every layer this node made is here already.
    fetch: Callable[[tuple[Layer, ...]], Awaitable[bool]] | None = None
    # The base images each platform's build used (for provenance); empty when the node
    # does not say (ssh nodes and BuildKit daemons, for now)
    bases: Mapping[Platform, tuple[UsedImage, ...]] = field(default_factory=dict)
    # --sbom's extra stages (BUILDKIT_SBOM_SCAN_STAGE): each platform's (stage name, its
    # layers, bottom first), the layers in this machine's store
    scanned: Mapping[Platform, tuple[tuple[str, tuple[Layer, ...]], ...]] = field(
        default_factory=dict
    )


class Driver(Protocol):
    """Builds platforms on one node; the images' blobs end up in this machine's store."""

    @property
    def label(self) -> str:
        """The node as messages name it (`node-arm64 (ssh://...)`, `this machine`)."""

    @property
    def vertex_prefix(self) -> str:
        """What the ids of its steps' progress events start with ("" for this machine)."""

    @property
    def cache_format(self) -> str:
        """Whose build cache records the node exports ("polybuild" or "buildkit"): one
        `--cache-to` ref cannot take both kinds from one build."""

    async def detect(self) -> Detected:
        """What the node runs, natively and emulated, from its own probe (asked once)."""

    def check(self, request: BuildRequest) -> None:
        """UsageError naming the flag when `request` asks what this node cannot do (asked of
        every planned node before any starts)."""

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild: ...


class LocalDriver:
    """This machine: the frontend, the solver and runc under the local data root."""

    label = "this machine"
    vertex_prefix = ""
    cache_format = "polybuild"

    def __init__(self, runtime: Runtime, puller: Puller | None, *, cache_records: str = "") -> None:
        self.runtime = runtime
        self.puller = puller
        # "min"/"max": keep the build's cache records though this request exports none (an
        # ssh node's, which its client exports).
        self.cache_records = cache_records

    def check(self, request: BuildRequest) -> None:
        if request.cache_to or request.cache_from:  # the cache code loads httpx: only then
            from polybuild.cache.transfer import check_specs

            check_specs(request.cache_to, request.cache_from)

    async def detect(self) -> Detected:
        from polybuild.binfmt.probe import ProbeStatus, cached_probe

        probes = await asyncio.to_thread(cached_probe)
        native = [p for r in probes if r.status is ProbeStatus.NATIVE for p in r.platforms]
        emulated = [p for r in probes if r.status is ProbeStatus.EMULATED for p in r.platforms]
        return Detected(tuple(native), tuple(emulated))

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild:
        # The frontend and solver load only when this machine builds (0.1 s of imports a
        # build on BuildKit daemons never needs).
        from polybuild.imagebuild.cache_flow import exportable_records, fetcher, solve_with_cache
        from polybuild.imagebuild.pipeline import convert_all
        from polybuild.solver.fileop import DockerfileFileOps

        mine = dataclasses.replace(request, platforms=platforms)
        converted = await convert_all(mine, self.runtime, self.puller, progress)
        file_ops = DockerfileFileOps(request.source_date_epoch)
        images, solver = await solve_with_cache(mine, self.runtime, converted, progress, file_ops)
        emulated = tuple((d, t) for d, (t, emu) in solver.timings.items() if emu)
        keep = self.cache_records or request.cache_to
        records = exportable_records(solver) if keep else {}
        fetch = fetcher(solver)
        if self.cache_records:  # an ssh node: what it sends back must be in its store
            every = self.cache_records == "max"
            records = {k: c for k, c in records.items() if (every and await fetch(c))
                       or all(solver.content.exists(x.blob) for x in c)}  # fmt: skip
        bases = {g.target_platform: converted.resolver.used(g.ops()) for g in converted.graphs}
        scanned = await _scanned_stages(mine, converted, solver)
        return NodeBuild(
            tuple(images), tuple(solver.executed), emulated, records, fetch, bases, scanned
        )


async def _scanned_stages(
    request: BuildRequest, converted: Converted, solver: Solver
) -> dict[Platform, tuple[tuple[str, tuple[Layer, ...]], ...]]:
    """The layers of the stages `--sbom` also scans (none without --sbom), from the solver's
    memoised results, each brought whole into the store."""
    sbom = request.attestations.sbom
    if sbom is None:
        return {}
    from polybuild.imagebuild.sbom_stages import scanned_stages
    from polybuild.solver.results import Chain

    found: dict[Platform, tuple[tuple[str, tuple[Layer, ...]], ...]] = {}
    for graph in converted.graphs:
        chains = []
        for stage in scanned_stages(
            graph, converted.dockerfile, request.build_args, sbom.scan_stage
        ):
            result = await solver.solve(stage.root)
            if isinstance(result, Chain) and not await solver.materialize(result):
                chains.append((stage.name or f"stage-{stage.index}", result.layers))
        found[graph.target_platform] = tuple(chains)
    return found


@dataclass(frozen=True, slots=True)
class Planned:
    """A driver and the platforms it builds."""

    driver: Driver
    platforms: tuple[Platform, ...]


async def plan(
    request: BuildRequest,
    builder: Builder,
    driver_for: Callable[[Node], Driver],
    warn: Callable[[str], None] | None = None,
) -> list[Planned]:
    """Each platform of the request sent to a node's driver (buildx's node selection).

    Nodes are probed (all at once) only when a platform is not among any node's --platform
    ones; a node that cannot be reached then runs nothing that another node runs, and
    `warn` hears why. Nodes that share a driver (every node of this machine shares the
    local one) build their platforms together, so work common to several platforms runs
    once.
    """
    drivers: dict[int, Driver] = {}

    def cached(node: Node) -> Driver:
        driver = driver_for(node)
        return drivers.setdefault(id(driver), driver)

    pinned = [p for n in builder.nodes for p in n.platforms]
    detected: dict[int, Detected] = {}
    if any(not any(only_strict(p).match(q) for q in pinned) for p in request.platforms):
        unique = {id(cached(n)): cached(n) for n in builder.nodes}
        found = await asyncio.gather(
            *(_detect(driver, warn) for driver in unique.values())
        )  # fmt: skip
        detected = dict(zip(unique, found, strict=True))
    assignments = resolve_nodes(
        request.platforms, builder.nodes, lambda node: detected[id(cached(node))]
    )
    grouped: dict[int, list[Platform]] = {}
    for assignment in assignments:
        driver = cached(assignment.node)
        grouped.setdefault(id(driver), []).extend(assignment.platforms)
    return [Planned(drivers[key], tuple(platforms)) for key, platforms in grouped.items()]


async def _detect(driver: Driver, warn: Callable[[str], None] | None) -> Detected:
    try:
        return await driver.detect()
    except NodeUnreachableError as exc:
        if warn is not None:
            warn(f"{exc.message}; its platforms go to other nodes if one runs them")
        return Detected()


async def build_on_nodes(
    request: BuildRequest, planned: list[Planned], progress: ProgressWriter
) -> NodeBuild:
    """Every node builds its platforms at once; the images come back in request order (the
    first node to fail cancels the others and its error is raised). Each node first checks
    that it can do what the request asks."""
    if len(planned) > 1 and "BUILDKIT_MULTI_PLATFORM" not in request.build_args:
        # buildx asks every node of a build several nodes share for a multi-platform
        # result (the frontend's multi-platform attribute), so every node names its steps
        # with their platform (names.multi_platform_requested); this build argument is
        # that attribute for every kind of node (BuildKit's frontend reads it too)
        args = {**request.build_args, "BUILDKIT_MULTI_PLATFORM": "1"}
        request = dataclasses.replace(request, build_args=args)
    for part in planned:
        part.driver.check(request)
    if request.cache_to and len({p.driver.cache_format for p in planned}) > 1:
        raise UsageError(
            f"--cache-to {request.cache_to[0]}: this build's platforms go to BuildKit daemons "
            "and to polybuild nodes, whose cache records cannot share one cache yet",
            hint="pin the platforms to one kind of node, or build each kind with its own "
            "--cache-to ref",
        )
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(p.driver.build(request, p.platforms, progress))
                     for p in planned]  # fmt: skip
    except BaseExceptionGroup as failures:
        raise first_error(failures) from None
    builds = [task.result() for task in tasks]
    by_platform = {image.platform: image for b in builds for image in b.images}
    fetchers = [b.fetch for b in builds if b.fetch is not None]

    async def fetch(layers: tuple[Layer, ...]) -> bool:
        return any([await f(layers) for f in fetchers])

    return NodeBuild(
        tuple(by_platform[platform] for platform in request.platforms),
        tuple(digest for b in builds for digest in b.executed),
        tuple(item for b in builds for item in b.emulated_seconds),
        {key: chain for b in builds for key, chain in b.records.items()},
        fetch if fetchers else None,
        {platform: used for b in builds for platform, used in b.bases.items()},
        {platform: stages for b in builds for platform, stages in b.scanned.items()},
    )


def driver_for(local: Driver, remote: Callable[[Node], Driver]) -> Callable[[Node], Driver]:
    """Each node's driver: `local` for this machine's nodes, `remote(node)` (made once per
    node) for ssh ones."""
    made: dict[str, Driver] = {}

    def choose(node: Node) -> Driver:
        if node.is_local:
            return local
        if node.endpoint not in made:
            made[node.endpoint] = remote(node)
        return made[node.endpoint]

    return choose


__all__ = [
    "Driver",
    "LocalDriver",
    "NodeBuild",
    "Planned",
    "build_on_nodes",
    "driver_for",
    "plan",
]
