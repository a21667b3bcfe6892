"""`build --check-reproducible`: every platform is built a second time, on another node of
the builder that runs it when there is one (else on the same node, without its cache), and
the two images of each platform are compared before any output is written.

The second build's steps show in the progress as `[check] ...`, so they are never mistaken
for the first build's. A platform whose images differ fails the build with
NotReproducibleError, saying what differs first (config field, layer, file and field).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from polybuild.errors import NodeUnreachableError, NotReproducibleError
from polybuild.image.compare import compare_images, render_difference
from polybuild.image.content import ContentStore
from polybuild.imagebuild.driver import Driver, NodeBuild, Planned, build_on_nodes
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform, format_platform, only
from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)
from polybuild.progress.writer import ProgressWriter


class _Relabelled:
    """A progress sink that shows the second build's events as its own steps."""

    def __init__(self, writer: ProgressWriter) -> None:
        self._writer = writer

    def emit(self, event: Event) -> None:
        if isinstance(event, VertexStarted):
            event = dataclasses.replace(
                event,
                vertex=f"check/{event.vertex}",
                name=f"[check] {event.name}",
                inputs=tuple(f"check/{v}" for v in event.inputs),
            )
        elif isinstance(event, VertexCompleted | VertexLog | VertexStatus):
            event = dataclasses.replace(event, vertex=f"check/{event.vertex}")
        elif isinstance(event, BuildWarning):
            event = dataclasses.replace(event, message=f"[check] {event.message}")
        self._writer.emit(event)

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Checked:
    """One platform of a check: where its two builds ran and the manifest they agree on."""

    platform: Platform
    first: str
    second: str
    manifest: str

    def line(self) -> str:
        where = (
            f"twice on {self.first} (the second time without its cache)"
            if self.first == self.second
            else f"on {self.first} and on {self.second}"
        )
        return f"reproducible: {format_platform(self.platform)} built {where}: {self.manifest}"


async def _runs(driver: Driver, platform: Platform) -> bool:
    try:
        detected = await driver.detect()
    except NodeUnreachableError:
        return False
    return any(only(p).match(platform) for p in detected.platforms)


async def second_plan(planned: Sequence[Planned], drivers: Sequence[Driver]) -> list[Planned]:
    """Each platform sent to the first other driver of `drivers` that runs it, else to the
    driver that built it first; platforms of one driver grouped, in `planned`'s order."""
    grouped: dict[int, tuple[Driver, list[Platform]]] = {}
    for first in planned:
        for platform in first.platforms:
            other = first.driver
            for candidate in drivers:
                if candidate is not first.driver and await _runs(candidate, platform):
                    other = candidate
                    break
            grouped.setdefault(id(other), (other, []))[1].append(platform)
    return [Planned(driver, tuple(platforms)) for driver, platforms in grouped.values()]


async def check_reproducible(
    request: BuildRequest,
    planned: Sequence[Planned],
    drivers: Sequence[Driver],
    first: NodeBuild,
    content: ContentStore,
    progress: ProgressWriter,
    label: Callable[[Driver], str],
) -> list[Checked]:
    """Build `request` again (no cache) as `second_plan` says and compare each platform's two
    images (all in `content`); NotReproducibleError listing every platform that differs."""
    again = await second_plan(planned, drivers)
    uncached = dataclasses.replace(request, no_cache=True)
    second = await build_on_nodes(uncached, again, ProgressWriter(_Relabelled(progress)))
    built_by = {p: label(item.driver) for item in planned for p in item.platforms}
    rebuilt_by = {p: label(item.driver) for item in again for p in item.platforms}
    checked: list[Checked] = []
    reports: list[str] = []
    for image, other in zip(first.images, second.images, strict=True):
        difference = compare_images(content, image, other)
        platform = image.platform
        if difference is None:
            manifest = str(image.manifest.digest)
            checked.append(Checked(platform, built_by[platform], rebuilt_by[platform], manifest))
        else:
            where = f"built on {built_by[platform]}, then on {rebuilt_by[platform]}"
            reports.append(f"{render_difference(difference)}\n  ({where})")
    if reports:
        raise NotReproducibleError(
            "two builds of the same platform differ:\n" + "\n".join(reports),
            hint="SOURCE_DATE_EPOCH fixes times; a step that writes the time, random data "
            "or the machine's name makes any build differ",
        )
    return checked


__all__ = ["Checked", "check_reproducible", "second_plan"]
