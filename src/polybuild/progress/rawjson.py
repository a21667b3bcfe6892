"""`--progress=rawjson`: one JSON object per line in BuildKit's SolveStatus shape.

Each line holds one of `vertexes`, `statuses`, `logs` or `warnings`, as BuildKit's
client.SolveStatus marshals them (times in RFC 3339 with nanoseconds, log data and warning
text base64-encoded as Go encodes []byte). A vertex is sent whole on every change, as
BuildKit does. Our additions on vertexes: `platform` and `emulated`.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from typing import TextIO

from polybuild.platforms import format_platform
from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)


def go_time(timestamp: float) -> str:
    """A Unix time as Go's time.Time marshals it (RFC 3339, trailing zeros trimmed)."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class RawJSONRenderer:
    """Writes SolveStatus lines to `stream`; safe to call from many threads."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._vertexes: dict[str, dict[str, object]] = {}

    def emit(self, event: Event) -> None:
        with self._lock:
            line = self._encode(event)
            if line is not None:
                self._stream.write(json.dumps(line, separators=(",", ":")) + "\n")
                self._stream.flush()

    def close(self) -> None:
        with self._lock:
            self._stream.flush()

    def _encode(self, event: Event) -> dict[str, object] | None:
        if isinstance(event, VertexStarted):
            vertex: dict[str, object] = {"digest": event.vertex}
            if event.inputs:
                vertex["inputs"] = list(event.inputs)
            vertex["name"] = event.name
            vertex["started"] = go_time(event.started)
            if event.platform is not None:
                vertex["platform"] = format_platform(event.platform)
            vertex["emulated"] = event.emulated
            self._vertexes[event.vertex] = vertex
            return {"vertexes": [self._ordered(vertex)]}
        if isinstance(event, VertexCompleted):
            known = self._vertexes.get(event.vertex)
            vertex = dict(known) if known is not None else {"digest": event.vertex}
            vertex["completed"] = go_time(event.completed)
            if event.cached:
                vertex["cached"] = True
            if event.error is not None:
                vertex["error"] = event.error
            self._vertexes[event.vertex] = vertex
            return {"vertexes": [self._ordered(vertex)]}
        if isinstance(event, VertexLog):
            log = {
                "vertex": event.vertex,
                "stream": event.stream,
                "data": _b64(event.data),
                "timestamp": go_time(event.timestamp),
            }
            return {"logs": [log]}
        if isinstance(event, VertexStatus):
            status: dict[str, object] = {"id": event.id, "vertex": event.vertex}
            if event.name:
                status["name"] = event.name
            if event.total:
                status["total"] = event.total
            status["current"] = event.current
            status["timestamp"] = go_time(event.timestamp)
            if event.started is not None:
                status["started"] = go_time(event.started)
            if event.completed is not None:
                status["completed"] = go_time(event.completed)
            return {"statuses": [status]}
        return {"warnings": [self._warning(event)]}

    @staticmethod
    def _ordered(vertex: dict[str, object]) -> dict[str, object]:
        # Go's field order for client.Vertex, then our additions.
        order = ("digest", "inputs", "name", "started", "completed", "cached", "error")
        extra = ("platform", "emulated")
        return {k: vertex[k] for k in (*order, *extra) if k in vertex}

    @staticmethod
    def _warning(event: BuildWarning) -> dict[str, object]:
        warning: dict[str, object] = {}
        if event.vertex:
            warning["vertex"] = event.vertex
        warning["level"] = 1
        warning["short"] = _b64(event.message.encode())
        if event.detail:
            warning["detail"] = [_b64(d.encode()) for d in event.detail]
        if event.url:
            warning["url"] = event.url
        return warning


__all__ = ["RawJSONRenderer", "go_time"]
