"""A builder node for tests of planning and merging: no solver, canned images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from polybuild.builders import Detected
from polybuild.image.platform_image import PlatformImage
from polybuild.imagebuild.driver import NodeBuild
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform
from polybuild.progress.writer import ProgressWriter


class FakeDriver:
    """Detects `platforms` (native) and `emulated`, and "builds" each asked platform by
    returning its canned image (KeyError for one it has none of); every call is recorded in
    `builds`, every probe in `probes`."""

    def __init__(
        self,
        platforms: Sequence[Platform] = (),
        images: Mapping[Platform, PlatformImage] | None = None,
        *,
        executed: Sequence[str] = (),
        emulated: Sequence[Platform] = (),
        label: str = "fake",
        vertex_prefix: str = "",
    ) -> None:
        self.label = label
        self.vertex_prefix = vertex_prefix
        self.platforms = tuple(platforms)
        self.emulated = tuple(emulated)
        self.probes = 0
        self.images = dict(images or {})
        self.executed = tuple(executed)
        self.builds: list[tuple[Platform, ...]] = []

    async def detect(self) -> Detected:
        self.probes += 1
        return Detected(self.platforms, self.emulated)

    cache_format = "polybuild"

    def check(self, request: BuildRequest) -> None:
        pass

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild:
        self.builds.append(platforms)
        return NodeBuild(tuple(self.images[p] for p in platforms), self.executed, ())


__all__ = ["FakeDriver"]
