"""The interactive display: one line per step and platform, redrawn in place with rich.Live.

    [+] Building 12.3s (5/8)                                        local:default
     => [linux/arm64 build 2/4] RUN make  (emulated)                        3.2s
     => => # cc -o app app.c
     => CACHED [linux/amd64 build 2/4] RUN make                             0.0s

Running steps show their last log lines; when the build ends the display stays as it
last was, followed by the logs of failed steps and the warnings, as buildx prints them
(plain.error_blocks, plain.warnings_block).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexLog,
    VertexStarted,
    VertexStatus,
)
from polybuild.progress.plain import error_blocks, format_bytes, warnings_block

LOG_LINES = 6
ERROR_LOG_LINES = 20


@dataclass(slots=True)
class _Step:
    name: str
    started: float
    emulated: bool
    completed: float | None = None
    cached: bool = False
    error: str | None = None
    logs: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=ERROR_LOG_LINES))
    partial: str = ""
    statuses: dict[str, VertexStatus] = field(default_factory=dict)


class TTYRenderer:
    """Redraws the build's state on a terminal; safe to call from many threads."""

    def __init__(self, stream: TextIO, *, console: Console | None = None, desc: str = "") -> None:
        self._desc = desc
        self._console = console or Console(file=stream, force_terminal=True, highlight=False)
        self._lock = threading.Lock()
        self._steps: dict[str, _Step] = {}
        self._warnings: list[BuildWarning] = []
        self._first: float | None = None
        self._last: float | None = None
        self._closed = False
        self._live = Live(
            get_renderable=self._render,
            console=self._console,
            refresh_per_second=8,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def emit(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                return
            self._apply(event)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._live.refresh()
        self._live.stop()
        self._print_errors()

    def _apply(self, event: Event) -> None:
        if isinstance(event, BuildWarning):
            self._warnings.append(event)
            return
        stamp = getattr(event, "started", None) or getattr(event, "timestamp", None)
        if isinstance(stamp, float):
            self._first = stamp if self._first is None else min(self._first, stamp)
        if isinstance(event, VertexStarted):
            self._steps.setdefault(event.vertex, _Step(event.name, event.started, event.emulated))
            return
        step = self._steps.get(event.vertex)
        if step is None:
            return
        if isinstance(event, VertexLog):
            *lines, step.partial = (step.partial + event.data.decode(errors="replace")).split("\n")
            at = max(event.timestamp - step.started, 0.0)
            step.logs.extend((at, line.rstrip("\r")) for line in lines)
        elif isinstance(event, VertexStatus):
            step.statuses[event.id] = event
        else:
            step.completed = event.completed
            step.cached = event.cached
            step.error = event.error
            self._last = max(self._last or event.completed, event.completed)

    def _elapsed(self, finished: bool) -> float:
        if self._first is None:
            return 0.0
        end = self._last if finished and self._last is not None else time.time()
        return max(end - self._first, 0.0)

    def _render(self) -> RenderableType:
        with self._lock:
            steps = list(self._steps.values())
            done = sum(1 for s in steps if s.completed is not None)
            finished = self._closed or (bool(steps) and done == len(steps))
            header = f"[+] Building {self._elapsed(finished):.1f}s ({done}/{len(steps)})"
            if self._closed:
                header += " FINISHED" if not any(s.error for s in steps) else ""
            top = Table.grid(expand=True)
            top.add_column(ratio=1, no_wrap=True)
            top.add_column(justify="right", no_wrap=True)
            top.add_row(Text(header, style="bold blue" if finished else "bold"), Text(self._desc))
            table = Table.grid(expand=True)
            table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
            table.add_column(justify="right", no_wrap=True)
            for step in steps:
                self._rows(table, step)
            return Group(top, table)

    @staticmethod
    def _rows(table: Table, step: _Step) -> None:
        end = step.completed if step.completed is not None else time.time()
        duration = f"{max(end - step.started, 0.0):.1f}s"
        line = Text(" => ")
        style = "blue" if step.completed is not None else ""
        if step.error is not None:
            line.append("ERROR ", style="bold red")
            style = "red"
        elif step.cached:
            line.append("CACHED ", style="blue")
        line.append(step.name, style=style)
        if step.emulated:
            line.append("  (emulated)", style="dim")
        table.add_row(line, Text(duration, style=style))
        # a step's transfers and export lines stay under it once done, as BuildKit's
        for status in step.statuses.values():
            size = f" {format_bytes(status.current)}" if status.current else ""
            if status.total:
                size += f" / {format_bytes(status.total)}"
            started = status.started if status.started is not None else status.timestamp
            ended = status.completed if status.completed is not None else end
            took = f"{max(ended - started, 0.0):.1f}s"
            table.add_row(Text(f" => => {status.id}{size}", style=style or "dim"), Text(took))
        if step.completed is not None:
            return
        for _, log in list(step.logs)[-LOG_LINES:]:
            table.add_row(Text(f" => => # {log}", style="dim"), Text(""))

    def _print_errors(self) -> None:
        steps = (
            (s.name, s.error, tuple(f"{_seconds(at)} {text}" for at, text in s.logs))
            for s in self._steps.values()
        )
        text = error_blocks(steps) + warnings_block(self._warnings)
        if text:
            self._console.file.write(text)
            self._console.file.flush()


def _seconds(offset: float) -> str:
    """A log line's time as BuildKit's tty shows it: 3 decimals under 10 s, 2 under 100."""
    return f"{offset:.3f}" if offset < 10 else f"{offset:.2f}" if offset < 100 else f"{offset:.1f}"


__all__ = ["TTYRenderer"]
