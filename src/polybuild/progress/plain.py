"""BuildKit's plain progress format, written as events arrive.

    #0 building with "default" instance using local driver

    #5 [linux/arm64 build 2/4] RUN make
    #5 0.532 cc -o app app.c
    #5 DONE 3.2s

Steps are numbered in the order they start. When output switches to another step while
one is still running, the running one gets a `#N ...` line and is re-announced by name
when it continues, as BuildKit does. Log lines carry the seconds since the step started.
At the end, each failed step's last log lines in BuildKit's `------` block
(progressui's printErrorLogs), then the warnings as buildx counts them (printWarnings).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)

ERROR_LOG_LINES = 10  # progressui's logsBufferSize: what a failed step's block shows


@dataclass(slots=True)
class _Vertex:
    index: int
    name: str
    started: float
    partial: bytearray = field(default_factory=bytearray)
    partial_offset: float = 0.0
    error: str | None = None
    last_logs: deque[str] = field(default_factory=lambda: deque(maxlen=ERROR_LOG_LINES))


def format_bytes(size: int) -> str:
    """Sizes as BuildKit prints them (`%.2f` of tonistiigi/units.Bytes): whole bytes below
    1000 (512B), else in decimal units with two decimals (1.54kB, 3.15MB)."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
    index, base = 0, 1
    while index < len(units) - 1 and size >= base * 1000:
        index, base = index + 1, base * 1000
    return f"{size}B" if index == 0 else f"{size / base:.2f}{units[index]}"


class PlainRenderer:
    """Writes the plain format to `stream`; safe to call from many threads."""

    def __init__(self, stream: TextIO, *, desc: str = "") -> None:
        self._stream = stream
        self._desc = desc
        self._lock = threading.Lock()
        self._vertices: dict[str, _Vertex] = {}
        self._current: str | None = None
        self._first = True
        self._warnings: list[BuildWarning] = []
        self._closed = False

    def emit(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                return
            if isinstance(event, VertexStarted):
                self._started(event)
            elif isinstance(event, VertexLog):
                self._log(event)
            elif isinstance(event, VertexStatus):
                self._status(event)
            elif isinstance(event, VertexCompleted):
                self._completed(event)
            else:
                self._warning(event)
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._flush_partial()
            self._write(
                error_blocks((s.name, s.error, tuple(s.last_logs)) for s in self._vertices.values())
            )
            self._write(warnings_block(self._warnings))
            self._stream.flush()

    def _write(self, text: str) -> None:
        self._stream.write(text)

    def _switch(self, vertex: str) -> _Vertex | None:
        """Make `vertex` the one being printed, with BuildKit's `#N ...` hand-over."""
        state = self._vertices.get(vertex)
        if state is None or self._current == vertex:
            return state
        if self._current is not None:
            old = self._vertices[self._current]
            self._flush_partial()
            self._write(f"#{old.index} ...\n")
        if not self._first:
            self._write("\n")
        elif self._desc:
            self._write(f"#0 {self._desc}\n\n")
        self._first = False
        self._write(f"#{state.index} {state.name}\n")
        self._current = vertex
        return state

    def _started(self, event: VertexStarted) -> None:
        if event.vertex in self._vertices:
            return
        self._vertices[event.vertex] = _Vertex(len(self._vertices) + 1, event.name, event.started)
        self._switch(event.vertex)

    def _log(self, event: VertexLog) -> None:
        state = self._switch(event.vertex)
        if state is None:
            return
        offset = max(event.timestamp - state.started, 0.0)
        if not state.partial:
            state.partial_offset = offset
        state.partial += event.data
        *lines, rest = bytes(state.partial).split(b"\n")
        state.partial = bytearray(rest)
        for n, line in enumerate(lines):
            # a line begun by an earlier chunk carries the time it began
            at = state.partial_offset if n == 0 else offset
            text = line.decode(errors="replace").rstrip("\r")
            self._write(f"#{state.index} {at:.3f} {text}\n")
            state.last_logs.append(f"{at:.3f} {text}")
        state.partial_offset = offset

    def _flush_partial(self) -> None:
        if self._current is None:
            return
        state = self._vertices[self._current]
        if state.partial:
            text = bytes(state.partial).decode(errors="replace").rstrip("\r")
            self._write(f"#{state.index} {state.partial_offset:.3f} {text}\n")
            state.last_logs.append(f"{state.partial_offset:.3f} {text}")
            state.partial.clear()

    def _status(self, event: VertexStatus) -> None:
        state = self._switch(event.vertex)
        if state is None:
            return
        size = ""
        if event.total:
            size = f" {format_bytes(event.current)} / {format_bytes(event.total)}"
        elif event.current:
            size = f" {format_bytes(event.current)}"
        end = event.completed if event.completed is not None else event.timestamp
        elapsed = ""
        if event.started is not None and end - event.started > 0.01:
            elapsed = f" {end - event.started:.1f}s"
        done = " done" if event.completed is not None else ""
        self._write(f"#{state.index} {event.id}{size}{elapsed}{done}\n")

    def _completed(self, event: VertexCompleted) -> None:
        state = self._switch(event.vertex)
        if state is None:
            return
        self._flush_partial()
        if event.canceled:
            self._write(f"#{state.index} CANCELED\n")
        elif event.error is not None:
            state.error = event.error
            self._write(f"#{state.index} ERROR: {event.error}\n")
        elif event.cached:
            self._write(f"#{state.index} CACHED\n")
        else:
            self._write(f"#{state.index} DONE {event.completed - state.started:.1f}s\n")
        self._current = None

    def _warning(self, event: BuildWarning) -> None:
        self._warnings.append(event)
        state = self._switch(event.vertex) if event.vertex else None
        if state is not None:
            self._write(f"#{state.index} WARN: {event.message}\n")


def error_blocks(steps: Iterable[tuple[str, str | None, Sequence[str]]]) -> str:
    """BuildKit's block for each failed step (name, error, last log lines), canceled ones
    left out: `------`, ` > NAME:`, the lines, `------`."""
    out = []
    for name, error, logs in steps:
        if error is None or error == "canceled" or error.endswith("context canceled"):
            continue
        out.append(f"------\n > {name}:\n")
        out.extend(f"{line}\n" for line in logs)
        out.append("------\n")
    return "".join(out)


def warnings_block(warnings: Sequence[BuildWarning]) -> str:
    """buildx's list after a build (printWarnings): the count, then each warning's short
    form; with --debug (POLYBUILD_DEBUG=1) each one's detail and URL too. A warning given
    again (by another node, for another step) is listed once, as buildx's dedupWarnings
    does (the step left out), where it first came."""
    warnings = list({(w.message, w.detail, w.url): w for w in warnings}.values())
    if not warnings:
        return ""
    debug = os.environ.get("POLYBUILD_DEBUG") == "1"
    count = len(warnings)
    head = "1 warning found" if count == 1 else f"{count} warnings found"
    out = [f"\n {head}{'' if debug else ' (use docker --debug to expand)'}:\n"]
    for warning in warnings:
        out.append(f" - {warning.message}\n")
        if debug:
            out.extend(f"{line}\n" for line in warning.detail)
            out.append(f"More info: {warning.url}\n" if warning.url else "")
            out.append("\n")
    return "".join(out)


__all__ = ["ERROR_LOG_LINES", "PlainRenderer", "error_blocks", "format_bytes", "warnings_block"]
