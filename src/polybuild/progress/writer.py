"""Emitting progress from the solver: `ProgressWriter` context managers, and sinks to combine.

writer = ProgressWriter(make_renderer("auto", sys.stderr))
with writer.vertex(op.digest, "[linux/arm64 build 2/4] RUN make",
                   platform=arm64, emulated=True) as step:
    step.log(b"cc -o app app.c\\n")
# leaving the block completes the step; an exception marks it failed and propagates
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from polybuild.platforms import Platform
from polybuild.progress.events import (
    STDOUT,
    BuildWarning,
    Event,
    Progress,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)

Clock = Callable[[], float]


class VertexHandle:
    """One running step: log output and transfer progress; mark it cached if found so."""

    def __init__(self, writer: ProgressWriter, vertex: str) -> None:
        self._writer = writer
        self.vertex = vertex
        self.cached = False

    def log(self, data: bytes, stream: int = STDOUT) -> None:
        if data:
            self._writer.emit(VertexLog(self.vertex, data, self._writer.clock(), stream))

    def status(
        self,
        id: str,
        current: int,
        total: int = 0,
        *,
        name: str = "",
        started: float | None = None,
        completed: float | None = None,
    ) -> None:
        self._writer.emit(
            VertexStatus(
                self.vertex, id, self._writer.clock(), current, total, name, started, completed
            )
        )

    def mark_cached(self) -> None:
        """The step's result came from the cache: it completes as CACHED."""
        self.cached = True


class ProgressWriter:
    """Builds events with timestamps from `clock` and sends them to a sink."""

    def __init__(self, sink: Progress, clock: Clock = time.time) -> None:
        self.sink = sink
        self.clock = clock
        self._held: dict[str, list[VertexStatus]] = {}
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        self.sink.emit(event)

    @contextlib.contextmanager
    def vertex(
        self,
        vertex: str,
        name: str,
        *,
        platform: Platform | None = None,
        emulated: bool = False,
        inputs: Sequence[str] = (),
    ) -> Iterator[VertexHandle]:
        """Report a step for the duration of the block (completed, failed or canceled)."""
        self.emit(VertexStarted(vertex, name, self.clock(), platform, emulated, tuple(inputs)))
        handle = VertexHandle(self, vertex)
        try:
            yield handle
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.emit(VertexCompleted(vertex, self.clock(), error="canceled", canceled=True))
            raise
        except BaseException as exc:
            self.emit(VertexCompleted(vertex, self.clock(), error=str(exc) or type(exc).__name__))
            raise
        self.emit(VertexCompleted(vertex, self.clock(), cached=handle.cached))

    def hold(self, key: str, status: VertexStatus) -> None:
        """Keep `status` of work done before the step it belongs to is shown (a base image
        pulled while the Dockerfile was converted: BuildKit shows its blobs under the FROM
        step) until `release(key, ...)`; its own vertex is ignored."""
        with self._lock:
            self._held.setdefault(key, []).append(status)

    def release(self, key: str, handle: VertexHandle) -> None:
        """Emit the statuses held under `key` as `handle`'s, in the order they were held."""
        with self._lock:
            held = self._held.pop(key, [])
        for status in held:
            self.emit(replace(status, vertex=handle.vertex))

    def cached(self, vertex: str, name: str, *, platform: Platform | None = None) -> None:
        """Report a step whose result was in the cache (it never ran)."""
        now = self.clock()
        self.emit(VertexStarted(vertex, name, now, platform))
        self.emit(VertexCompleted(vertex, now, cached=True))

    def warn(
        self, message: str, *, vertex: str | None = None, detail: Sequence[str] = (), url: str = ""
    ) -> None:
        self.emit(BuildWarning(message, self.clock(), vertex, tuple(detail), url))

    def close(self) -> None:
        self.sink.close()


class Recorder:
    """A sink that keeps every event, in order (for the emulation report and tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def emit(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def close(self) -> None:
        pass

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)


class Fanout:
    """A sink that sends each event to several sinks (a renderer and a Recorder)."""

    def __init__(self, *sinks: Progress) -> None:
        self.sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class NullProgress:
    """Discards everything (`--progress=quiet`)."""

    def emit(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass


__all__ = ["Fanout", "NullProgress", "ProgressWriter", "Recorder", "VertexHandle"]
