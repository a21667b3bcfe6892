"""A BuildKit daemon's Status stream as polybuild's progress events: each vertex started and
completed once, its logs and transfer statuses, and warnings. Step names are the daemon's
own, as buildx shows them (`[2/3] RUN make`; `[linux/arm64 2/3] RUN make` when the frontend
was asked for several platforms); vertex ids are prefixed with the node's name (never shown:
two nodes never share a step on this machine's display). Text from the daemon is made
printable."""

from __future__ import annotations

from typing import Any

from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)
from polybuild.remote.process import printable


def _seconds(timestamp: Any) -> float:
    return float(timestamp.seconds) + float(timestamp.nanos) / 1e9


class StatusEvents:
    """Remembers what was shown, so each update adds only what is new."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._started: set[str] = set()
        self._completed: set[str] = set()
        self._names: dict[str, str] = {}

    def name_of(self, vertex: str) -> str:
        """The name a step of the daemon (by its digest) was shown with ("" if never)."""
        return self._names.get(self._id(vertex), "")

    def _id(self, vertex: str) -> str:
        return f"{self.node}/{vertex}"

    def events(self, update: Any) -> list[Event]:
        """The events one StatusResponse adds."""
        found: list[Event] = []
        completed: list[Event] = []  # after the update's statuses and logs, as BuildKit shows
        for vertex in update.vertexes:
            vid = self._id(vertex.digest)
            name = printable(vertex.name, 2000)
            self._names.setdefault(vid, name)
            if vertex.HasField("started") and vid not in self._started:
                self._started.add(vid)
                inputs = tuple(self._id(i) for i in vertex.inputs)
                found.append(VertexStarted(vid, name, _seconds(vertex.started), inputs=inputs))
            if vertex.HasField("completed") and vid not in self._completed:
                if vid not in self._started:  # cached steps may come completed at once
                    self._started.add(vid)
                    found.append(VertexStarted(vid, name, _seconds(vertex.completed)))
                self._completed.add(vid)
                error = printable(vertex.error, 4000) if vertex.error else None
                completed.append(
                    VertexCompleted(vid, _seconds(vertex.completed), vertex.cached, error)
                )
        for status in update.statuses:
            found.append(
                VertexStatus(
                    self._id(status.vertex),
                    printable(status.ID),
                    _seconds(status.timestamp),
                    status.current,
                    status.total,
                    printable(status.name),
                    _seconds(status.started) if status.HasField("started") else None,
                    _seconds(status.completed) if status.HasField("completed") else None,
                )
            )
        for log in update.logs:
            stream = log.stream if log.stream in (1, 2) else 1
            found.append(VertexLog(self._id(log.vertex), log.msg, _seconds(log.timestamp), stream))
        for warning in update.warnings:
            found.append(
                BuildWarning(
                    printable(warning.short.decode(errors="replace"), 2000),
                    0.0,
                    self._id(warning.vertex) if warning.vertex else None,
                    tuple(printable(d.decode(errors="replace"), 2000) for d in warning.detail),
                    printable(warning.url),
                )
            )
        return found + completed


__all__ = ["StatusEvents"]
