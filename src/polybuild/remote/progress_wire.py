"""Progress events across the wire: the node turns each event of its solve into a Progress
message, the client turns it back into an event for its own renderers. Step names are the
node's own, as buildx shows a node's steps (`[2/3] RUN make`, `[linux/arm64 2/3] RUN make`
when the build is multi-platform); only the vertex ids carry the node, so two nodes' steps
stay two steps."""

from __future__ import annotations

from msgspec.structs import replace

from polybuild.platforms import format_platform, parse
from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)
from polybuild.remote.messages import Progress
from polybuild.remote.process import printable


def to_message(request_id: int, event: Event) -> Progress:
    """The Progress message carrying `event` of solve `request_id`."""
    if isinstance(event, VertexStarted):
        platform = format_platform(event.platform) if event.platform is not None else ""
        return Progress(
            request_id,
            "started",
            vertex=event.vertex,
            name=event.name,
            time=event.started,
            platform=platform,
            emulated=event.emulated,
            inputs=event.inputs,
        )
    if isinstance(event, VertexCompleted):
        return Progress(
            request_id,
            "completed",
            vertex=event.vertex,
            time=event.completed,
            cached=event.cached,
            error=event.error,
            canceled=event.canceled,
        )
    if isinstance(event, VertexLog):
        return Progress(
            request_id,
            "log",
            vertex=event.vertex,
            data=event.data,
            time=event.timestamp,
            stream=event.stream,
        )
    if isinstance(event, VertexStatus):
        return Progress(
            request_id,
            "status",
            vertex=event.vertex,
            status_id=event.id,
            time=event.timestamp,
            current=event.current,
            total=event.total,
            name=event.name,
            started=event.started,
            completed=event.completed,
        )
    return Progress(
        request_id,
        "warning",
        vertex=event.vertex or "",
        name=event.message,
        time=event.timestamp,
        detail=event.detail,
        url=event.url,
    )


def from_message(message: Progress, node: str) -> Event | None:
    """The event `message` carries, None for a kind this version does not know. Text from
    the node is made printable: it may be hostile. Vertex ids get the node's name (never
    shown): two nodes building the same step are two steps on this machine's display."""
    message = replace(
        message,
        vertex=f"{node}/{message.vertex}" if message.vertex else "",
        inputs=tuple(f"{node}/{vertex}" for vertex in message.inputs),
    )
    if message.kind == "started":
        platform = parse(message.platform) if message.platform else None
        return VertexStarted(
            message.vertex,
            printable(message.name, 2000),
            message.time,
            platform,
            message.emulated,
            message.inputs,
        )
    if message.kind == "completed":
        error = printable(message.error, 4000) if message.error is not None else None
        return VertexCompleted(
            message.vertex, message.time, message.cached, error, message.canceled
        )
    if message.kind == "log":
        return VertexLog(message.vertex, message.data, message.time, message.stream)
    if message.kind == "status":
        return VertexStatus(
            message.vertex,
            message.status_id,
            message.time,
            message.current,
            message.total,
            printable(message.name),
            message.started,
            message.completed,
        )
    if message.kind == "warning":
        return BuildWarning(
            printable(message.name, 2000),
            message.time,
            message.vertex or None,
            tuple(printable(line, 2000) for line in message.detail),
            printable(message.url),
        )
    return None
