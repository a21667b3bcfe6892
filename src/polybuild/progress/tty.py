"""The interactive display: one line per step, redrawn in place ten times a second.

    [+] Building 12.3s (5/8)                                        local:default
     => [linux/arm64 build 2/4] RUN make                        emulated   3.2s
     => => # cc -o app app.c
     => CACHED [linux/amd64 build 2/4] RUN make                             0.0s

As BuildKit's tty view: a running step shows its last six lines of output under it (gone
once it is done), transfers stay under their step, and when the steps outgrow the terminal
the oldest finished ones scroll away (running ones always stay in view). A RUN step says
whether it runs `emulated` or `native`, and on a builder of several nodes which node runs
it. When the build ends the display is drawn once more in full, followed by the logs of
failed steps and the warnings, as buildx prints them (plain.error_blocks,
plain.warnings_block).

A frame is plain strings and ANSI cursor moves written in one call: finished steps' lines
are made once and kept, so a redraw costs about the running steps' lines (benchmarks/
tty_view.py measures it). Step names and their output are hostile: control characters and
escape sequences never reach the terminal.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexLog,
    VertexStarted,
    VertexStatus,
)
from polybuild.progress.plain import error_blocks, format_bytes, warnings_block
from polybuild.progress.sanitize import cells, clean, fit

LOG_LINES = 6  # BuildKit's termHeightInitial
ERROR_LOG_LINES = 20
REFRESH_SECONDS = 0.1
_FALLBACK_SIZE = (80, 24)

_BLUE, _RED, _YELLOW, _FAINT, _RESET = "\x1b[34m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[0m"
_EMULATED, _NATIVE = "\x1b[35memulated\x1b[0m", "\x1b[32mnative\x1b[0m"
_HIDE, _SHOW, _ERASE_LINE, _ERASE_BELOW = "\x1b[?25l", "\x1b[?25h", "\x1b[K", "\x1b[J"


@dataclass(slots=True)
class _Step:
    vertex: str
    name: str
    started: float
    emulated: bool
    run: bool  # a RUN step with a platform: it runs natively or emulated
    node: str = ""
    completed: float | None = None
    cached: bool = False
    error: str | None = None
    logs: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=ERROR_LOG_LINES))
    partial: str = ""
    statuses: dict[str, VertexStatus] = field(default_factory=dict)
    done_lines: tuple[int, list[str]] | None = None  # (width, lines) once it is finished


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_SIZE
    return (size.columns or _FALLBACK_SIZE[0], size.lines or _FALLBACK_SIZE[1])


class TTYRenderer:
    """Redraws the build's state on a terminal; `emit` is safe to call from many threads.

    `nodes` are (vertex prefix, label) of the builder's nodes: with more than one, each
    step shows the node that runs it. `size` gives (columns, lines), the terminal's by
    default."""

    def __init__(
        self,
        stream: TextIO,
        *,
        desc: str = "",
        nodes: Sequence[tuple[str, str]] = (),
        size: Callable[[], tuple[int, int]] | None = None,
        refresh: float = REFRESH_SECONDS,
    ) -> None:
        self._stream = stream
        self._desc = clean(desc)
        self._nodes = sorted(nodes, key=lambda n: -len(n[0])) if len(nodes) > 1 else []
        self._size = size or (lambda: _terminal_size(stream))
        self._lock = threading.Lock()  # the state
        self._output = threading.Lock()  # the terminal: one frame or message at a time
        self._steps: dict[str, _Step] = {}
        self._warnings: list[BuildWarning] = []
        self._first: float | None = None
        self._last: float | None = None
        self._drawn = 0  # lines of the last frame, to move back over
        self._closed = False
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(refresh,), name="polybuild-tty", daemon=True
        )
        self._thread.start()

    def emit(self, event: Event) -> None:
        with self._lock:
            if not self._closed:
                self._apply(event)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._thread.join()
        self._draw(final=True)
        self._print_errors()

    def _loop(self, refresh: float) -> None:
        while not self._wake.wait(refresh):
            try:
                self._draw(final=False)
            except Exception:  # a frame that cannot be drawn: the next one, or the final
                continue

    def _node(self, vertex: str) -> str:
        for prefix, label in self._nodes:
            if vertex.startswith(prefix):
                return label
        return ""

    def _apply(self, event: Event) -> None:
        if isinstance(event, BuildWarning):
            self._warnings.append(event)
            return
        stamp = getattr(event, "started", None) or getattr(event, "timestamp", None)
        if isinstance(stamp, float):
            self._first = stamp if self._first is None else min(self._first, stamp)
        if isinstance(event, VertexStarted):
            if event.vertex not in self._steps:
                name = clean(event.name)
                run = event.platform is not None and "] RUN " in name
                self._steps[event.vertex] = _Step(
                    event.vertex, name, event.started, event.emulated, run, self._node(event.vertex)
                )
            return
        step = self._steps.get(event.vertex)
        if step is None:
            return
        if isinstance(event, VertexLog):
            *lines, step.partial = (step.partial + event.data.decode(errors="replace")).split("\n")
            at = max(event.timestamp - step.started, 0.0)
            # what a terminal would show of a line redrawn with \r (progress bars)
            step.logs.extend((at, clean(line.rstrip("\r").rpartition("\r")[2])) for line in lines)
        elif isinstance(event, VertexStatus):
            step.statuses[event.id] = event
            step.done_lines = None
        else:
            step.completed = event.completed
            step.cached = event.cached
            step.error = event.error
            step.done_lines = None
            self._last = max(self._last or event.completed, event.completed)

    # -- drawing ----------------------------------------------------------------------

    def print_above(self, text: str) -> None:
        """Print `text` (whole lines, such as a warning) where the display is, which is then
        drawn again below it: a frame never moves up over it."""
        with self._output:
            with self._lock:
                up, self._drawn = self._drawn, 0
            move = f"\x1b[{up}A\r{_ERASE_BELOW}" if up else ""
            self._write(move + clean(text, keep="\n"))

    def _draw(self, *, final: bool) -> None:
        width, height = self._size()
        width = max(width, 20)
        with self._output:
            with self._lock:
                lines = self._frame(width, height, final=final)
                up = self._drawn
                self._drawn = 0 if final else len(lines)
            move = f"\x1b[{up}A\r" if up else "\r"
            body = "".join(f"{line}{_ERASE_LINE}\n" for line in lines)
            self._write(f"{_HIDE}{move}{body}{_ERASE_BELOW}{_SHOW}")

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # the terminal went away: nothing more to show
            self._wake.set()

    def _frame(self, width: int, height: int, *, final: bool) -> list[str]:
        steps = list(self._steps.values())
        done = sum(1 for s in steps if s.completed is not None)
        now = time.time()
        finished = self._closed or (bool(steps) and done == len(steps))
        end = self._last if finished and self._last is not None else now
        elapsed = max(end - self._first, 0.0) if self._first is not None else 0.0
        header = f"[+] Building {elapsed:.1f}s ({done}/{len(steps)})"
        if final and steps and done == len(steps) and not any(s.error for s in steps):
            header += " FINISHED"
        header = fit(_align(header, self._desc, width - 1), width - 1)
        colour = _BLUE if finished else ""
        lines = [f"{colour}{header}{_RESET if colour else ''}"]
        blocks = [self._step_lines(step, width, now, final=final) for step in steps]
        if not final:
            blocks = _wrap_height(steps, blocks, height - 2)
        for block in blocks:
            lines.extend(block)
        return lines

    def _step_lines(self, step: _Step, width: int, now: float, *, final: bool) -> list[str]:
        if step.completed is not None:
            if step.done_lines is None or step.done_lines[0] != width:
                step.done_lines = (width, self._lines(step, width, step.completed))
            return step.done_lines[1]
        lines = self._lines(step, width, now)
        if not final:
            room = width - 10
            logs = list(step.logs)[-LOG_LINES:]
            lines += [f"{_FAINT} => => # {fit(text, room)}{_RESET}" for _, text in logs]
        return lines

    def _lines(self, step: _Step, width: int, end: float) -> list[str]:
        seconds = max(end - step.started, 0.0)
        timer = f"{0.0 if seconds < 0.05 else seconds:.1f}s"
        prefix = " => "
        if step.error is not None:
            prefix += "ERROR "
        elif step.cached:
            prefix += "CACHED "
        marker, plain_marker = "", ""
        if step.run and not step.cached:
            plain_marker = "emulated" if step.emulated else "native"
            marker = _EMULATED if step.emulated else _NATIVE
        if step.completed is not None:  # the line takes the step's colour
            marker = plain_marker
        if step.node:
            plain_marker = f"{step.node} {plain_marker}".strip()
            marker = f"{step.node} {marker}".strip()
        room = width - 1 - cells(prefix) - len(timer) - 2
        if plain_marker and room - cells(plain_marker) - 1 >= 12:
            room -= cells(plain_marker) + 1
        else:
            marker = plain_marker = ""
        name = fit(step.name, max(room, 0))
        gap = " " * max(width - 1 - cells(prefix + name) - len(plain_marker) - len(timer) - 1, 1)
        colour = ""
        if step.completed is not None:
            colour = _RED if step.error is not None else _BLUE
        text = f"{prefix}{name}{gap}{marker}{' ' if marker else ''}{timer}"
        if not marker:
            text = _align(f"{prefix}{name}", timer, width - 1)
        lines = [f"{colour}{text}{_RESET}" if colour else text]
        for status in step.statuses.values():
            size = f" {format_bytes(status.current)}" if status.current else ""
            if status.total:
                size += f" / {format_bytes(status.total)}"
            started = status.started if status.started is not None else status.timestamp
            ended = status.completed if status.completed is not None else end
            took = f"{max(ended - started, 0.0):.1f}s"
            left = fit(f" => => {clean(status.id)}{size}", width - 2 - len(took))
            line = _align(left, took, width - 1)
            lines.append(f"{colour or _FAINT}{line}{_RESET}")
        return lines

    def _print_errors(self) -> None:
        steps = (
            (
                s.name,
                clean(s.error, keep="\n") if s.error is not None else None,
                tuple(f"{_seconds(at)} {text}" for at, text in s.logs),
            )
            for s in self._steps.values()
        )
        text = error_blocks(steps) + clean(warnings_block(self._warnings), keep="\n")
        if text:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                pass


def _align(left: str, right: str, width: int) -> str:
    """`left` and `right` on one line of `width` columns, `right` flush right."""
    gap = width - cells(left) - cells(right)
    return f"{left}{' ' * max(gap, 1)}{right}"


def _wrap_height(steps: list[_Step], blocks: list[list[str]], limit: int) -> list[list[str]]:
    """The last steps whose lines fit in `limit` lines; running steps pushed out of view by
    that are brought back in place of the oldest finished ones shown (BuildKit's wrapHeight,
    counted in lines because a running step's output takes lines too)."""
    if limit <= 0:
        return []
    if sum(len(b) for b in blocks) <= limit:
        return blocks
    keep = [False] * len(blocks)
    used = 0
    for index in range(len(blocks) - 1, -1, -1):  # running steps first, newest first
        if steps[index].completed is None and used + len(blocks[index]) <= limit:
            keep[index] = True
            used += len(blocks[index])
    for index in range(len(blocks) - 1, -1, -1):  # then the newest finished ones that fit
        if not keep[index] and used + len(blocks[index]) <= limit:
            keep[index] = True
            used += len(blocks[index])
        elif not keep[index]:
            break
    return [block for index, block in enumerate(blocks) if keep[index]]


def _seconds(offset: float) -> str:
    """A log line's time as BuildKit's tty shows it: 3 decimals under 10 s, 2 under 100."""
    return f"{offset:.3f}" if offset < 10 else f"{offset:.2f}" if offset < 100 else f"{offset:.1f}"


__all__ = ["LOG_LINES", "TTYRenderer", "clean", "fit"]
