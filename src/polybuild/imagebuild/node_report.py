"""After a build on remote nodes: which node built which platform, natively or under QEMU
(from the build's progress events: a platform is emulated on a node when one of its steps
ran there under QEMU)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from polybuild.imagebuild.driver import Planned
from polybuild.platforms import Platform, format_platform
from polybuild.progress.events import Event, VertexCompleted, VertexStarted
from polybuild.progress.report import format_duration


def _owner(planned: Sequence[Planned], vertex: str) -> int | None:
    """The index of the plan entry whose driver's steps carry this vertex id (the longest
    prefix: a remote node's `name/`, this machine's none)."""
    best: tuple[int, int] | None = None
    for index, item in enumerate(planned):
        prefix = item.driver.vertex_prefix
        if vertex.startswith(prefix) and (best is None or len(prefix) > best[1]):
            best = (index, len(prefix))
    return best[0] if best is not None else None


def node_report(planned: Sequence[Planned], events: Iterable[Event]) -> str:
    """One line per node and platform: native, or emulated with the steps that ran under
    QEMU and their time; "" when every node is this machine (the emulation report says it
    all then)."""
    if all(not item.driver.vertex_prefix for item in planned):
        return ""
    started: dict[str, tuple[int, Platform, float]] = {}
    emulated: dict[tuple[int, Platform], list[float]] = {}  # seconds of each step that ran
    for event in events:
        if isinstance(event, VertexStarted) and event.emulated and event.platform is not None:
            owner = _owner(planned, event.vertex)
            if owner is not None:
                started[event.vertex] = (owner, event.platform, event.started)
                emulated.setdefault((owner, event.platform), [])
        elif isinstance(event, VertexCompleted) and event.vertex in started:
            owner, platform, began = started.pop(event.vertex)
            if not event.cached:
                seconds = max(event.completed - began, 0.0)
                emulated.setdefault((owner, platform), []).append(seconds)
    lines = ["Built on:"]
    width = max(len(item.driver.label) for item in planned)
    for index, item in enumerate(planned):
        for platform in item.platforms:
            steps = emulated.get((index, platform))
            how = "native"
            if steps is not None:  # a step of it was emulated, whether it ran or was cached
                plural = "s" if len(steps) != 1 else ""
                spent = format_duration(sum(steps))
                how = f"emulated ({len(steps)} step{plural} ran, {spent} under QEMU)"
            label = item.driver.label
            lines.append(f"  {label:<{width}}  {format_platform(platform)}  {how}")
    return "\n".join(lines)


__all__ = ["node_report"]
