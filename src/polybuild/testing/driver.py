"""A builder node for tests of planning and merging: no solver, canned images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from polybuild.image.platform_image import PlatformImage
from polybuild.imagebuild.driver import NodeBuild
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform
from polybuild.progress.writer import ProgressWriter


class FakeDriver:
    """Detects `platforms` and "builds" each asked platform by returning its canned image
    (KeyError for one it has none of); every call is recorded in `builds`."""

    def __init__(
        self,
        platforms: Sequence[Platform] = (),
        images: Mapping[Platform, PlatformImage] | None = None,
        *,
        executed: Sequence[str] = (),
    ) -> None:
        self.platforms = tuple(platforms)
        self.images = dict(images or {})
        self.executed = tuple(executed)
        self.builds: list[tuple[Platform, ...]] = []

    def detected_platforms(self) -> Sequence[Platform]:
        return self.platforms

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild:
        self.builds.append(platforms)
        return NodeBuild(tuple(self.images[p] for p in platforms), self.executed, ())


__all__ = ["FakeDriver"]
