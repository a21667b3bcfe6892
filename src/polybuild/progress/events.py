"""The progress event model the solver emits, and the `Progress` sink protocol renderers implement.

A vertex is one step of the build graph, identified by `vertex` (the op digest; the op
digest already covers the platform). Times are Unix timestamps (float seconds). Sinks must
accept events from any thread: the solver runs steps in threads and in asyncio tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from polybuild.platforms import Platform

STDOUT = 1
STDERR = 2


@dataclass(frozen=True, slots=True)
class VertexStarted:
    """A step began (or was found in the cache, then `VertexCompleted(cached=True)` follows)."""

    vertex: str
    name: str
    started: float
    platform: Platform | None = None
    emulated: bool = False
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VertexCompleted:
    """A step ended: from the cache, successfully, with an error, or canceled."""

    vertex: str
    completed: float
    cached: bool = False
    error: str | None = None
    canceled: bool = False


@dataclass(frozen=True, slots=True)
class VertexLog:
    """Output of a step's process; `stream` is 1 (stdout) or 2 (stderr)."""

    vertex: str
    data: bytes
    timestamp: float
    stream: int = STDOUT


@dataclass(frozen=True, slots=True)
class VertexStatus:
    """Progress of a transfer inside a step (a layer download, an export): bytes done/total."""

    vertex: str
    id: str
    timestamp: float
    current: int = 0
    total: int = 0
    name: str = ""
    started: float | None = None
    completed: float | None = None


@dataclass(frozen=True, slots=True)
class BuildWarning:
    """A warning for the user, tied to a step or to the whole build."""

    message: str
    timestamp: float
    vertex: str | None = None
    detail: tuple[str, ...] = ()
    url: str = ""


Event = VertexStarted | VertexCompleted | VertexLog | VertexStatus | BuildWarning


class Progress(Protocol):
    """Where events go. `emit` is thread-safe; `close` ends the display (idempotent)."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


__all__ = [
    "STDERR",
    "STDOUT",
    "BuildWarning",
    "Event",
    "Progress",
    "VertexCompleted",
    "VertexLog",
    "VertexStarted",
    "VertexStatus",
]
