"""The node seam: a `Driver` builds some of a request's platforms on one builder node.

The build plans platform -> node with the pure `builders.resolve_nodes`, asks each node's
driver to build its platforms (all drivers at once, on one event loop), and exports what
comes back as one image; exporters never know which node built a manifest. `LocalDriver`
builds on this machine; `remote_driver.RemoteDriver` on an ssh node.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from polybuild.builders import Builder, Node, resolve_nodes
from polybuild.image.platform_image import PlatformImage
from polybuild.imagebuild.baseimages import Puller
from polybuild.imagebuild.pipeline import convert_all, solve
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform
from polybuild.progress.writer import ProgressWriter
from polybuild.runtime import Runtime
from polybuild.solver.fileop import DockerfileFileOps


@dataclass(frozen=True, slots=True)
class NodeBuild:
    """What a node built: one stored image per platform asked (in that order) and its steps."""

    images: tuple[PlatformImage, ...]
    executed: tuple[str, ...]  # op digests that ran (not cached)
    emulated_seconds: tuple[tuple[str, float], ...]  # (op digest, seconds) under QEMU


class Driver(Protocol):
    """Builds platforms on one node; the images' blobs end up in this machine's store."""

    def detected_platforms(self) -> Sequence[Platform]:
        """What the node runs: native first, then emulated."""

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild: ...


class LocalDriver:
    """This machine: the frontend, the solver and runc under the local data root."""

    def __init__(self, runtime: Runtime, puller: Puller | None) -> None:
        self.runtime = runtime
        self.puller = puller

    def detected_platforms(self) -> Sequence[Platform]:
        from polybuild.binfmt.probe import runnable_platforms

        return runnable_platforms()

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild:
        mine = dataclasses.replace(request, platforms=platforms)
        converted = await convert_all(mine, self.runtime, self.puller)
        file_ops = DockerfileFileOps(request.source_date_epoch)
        images, solver = await solve(mine, self.runtime, converted, progress, file_ops)
        emulated = tuple((d, t) for d, (t, emu) in solver.timings.items() if emu)
        return NodeBuild(tuple(images), tuple(solver.executed), emulated)


@dataclass(frozen=True, slots=True)
class Planned:
    """A driver and the platforms it builds."""

    driver: Driver
    platforms: tuple[Platform, ...]


def plan(
    request: BuildRequest, builder: Builder, driver_for: Callable[[Node], Driver]
) -> list[Planned]:
    """Each platform of the request sent to a node's driver (buildx's node selection).

    Nodes that share a driver (every node of this machine shares the local one) build
    their platforms together, so work common to several platforms runs once.
    """
    drivers: dict[int, Driver] = {}

    def cached(node: Node) -> Driver:
        driver = driver_for(node)
        return drivers.setdefault(id(driver), driver)

    assignments = resolve_nodes(
        request.platforms, builder.nodes, lambda node: cached(node).detected_platforms()
    )
    grouped: dict[int, list[Platform]] = {}
    for assignment in assignments:
        driver = cached(assignment.node)
        grouped.setdefault(id(driver), []).extend(assignment.platforms)
    return [Planned(drivers[key], tuple(platforms)) for key, platforms in grouped.items()]


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


__all__ = ["Driver", "LocalDriver", "NodeBuild", "Planned", "driver_for", "plan"]
