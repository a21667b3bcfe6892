"""A finished build as history keeps it: frozen values, their JSON form, and new refs.

One `BuildRecord` per build (completed, failed or canceled), designed for `history ls`,
`inspect` and `logs` as buildx has them and for later reports (a timeline per platform and
node, the emulation advisor): every step keeps its platform, node, times, cache and
emulation flags, its error and the tail of its logs. Secret values are never part of a
record: the request's options name secret ids only.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

FORMAT_VERSION = 1
COMPLETED = "completed"
ERROR = "error"
CANCELED = "canceled"
STATUSES = (COMPLETED, ERROR, CANCELED)

DOCKERFILE_SOURCE_LIMIT = 256 * 1024  # bytes of Dockerfile kept in a record, at most
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
REF_LENGTH = 25  # BuildKit's identity.NewID: 128 random bits in base 36


def new_ref() -> str:
    """A build ref as BuildKit makes them: 25 lowercase letters and digits (128 bits)."""
    value = secrets.randbits(128)
    digits = []
    while value:
        value, rest = divmod(value, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits)).rjust(REF_LENGTH, "0")


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Output a step wrote: `stream` 1 (stdout) or 2 (stderr), at `timestamp`."""

    timestamp: float
    stream: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """A transfer inside a step (a layer pulled, an export), as it last stood."""

    id: str
    timestamp: float
    current: int = 0
    total: int = 0
    name: str = ""
    started: float | None = None
    completed: float | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One vertex of the build: when it ran, where, and what it printed (the tail)."""

    vertex: str
    name: str
    started: float
    completed: float | None = None  # None: it never finished (the build stopped first)
    platform: str = ""  # os/arch[/variant], "" for steps of no platform
    node: str = ""  # the node's label ("this machine", "node-1 (ssh://...)")
    cached: bool = False
    emulated: bool = False
    error: str = ""
    canceled: bool = False
    inputs: tuple[str, ...] = ()
    logs: tuple[LogChunk, ...] = ()
    clipped: int = 0  # bytes of output left out (the oldest ones)
    statuses: tuple[StatusRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class WarningRecord:
    """A warning the build printed (lint rules, deprecated flags)."""

    message: str
    timestamp: float
    vertex: str = ""
    detail: tuple[str, ...] = ()
    url: str = ""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node that built some of the platforms."""

    label: str
    platforms: tuple[str, ...]
    vertex_prefix: str = ""


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """One build. `options` holds the request's non-secret options as strings (buildx's
    frontend attribute names where it has them: `build-arg:X`, `label:X`, `no-cache`...);
    `secrets`/`ssh` hold ids only."""

    ref: str
    name: str
    builder: str
    started: float
    completed: float
    status: str  # completed, error or canceled
    context: str = ""
    dockerfile: str = ""
    # the Dockerfile's text as the build read it (for the advisor and reports: the file may
    # change or go); "" when it was not read or was larger than DOCKERFILE_SOURCE_LIMIT
    dockerfile_source: str = ""
    target: str = ""
    platforms: tuple[str, ...] = ()
    nodes: tuple[NodeRecord, ...] = ()
    node_name: str = ""  # the builder's first node (buildx's BUILDER/NODE/REF)
    options: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()  # each output's type and non-secret attributes
    secrets: tuple[str, ...] = ()  # --secret ids (never the values)
    ssh: tuple[str, ...] = ()  # --ssh ids
    error: str = ""
    image_digest: str = ""  # containerimage.digest
    steps: tuple[StepRecord, ...] = ()
    warnings: tuple[WarningRecord, ...] = ()
    version: int = FORMAT_VERSION

    @property
    def duration(self) -> float:
        return max(self.completed - self.started, 0.0)

    @property
    def cached_steps(self) -> int:
        return sum(1 for s in self.steps if s.cached)

    @property
    def completed_steps(self) -> int:
        return sum(1 for s in self.steps if s.completed is not None and not s.error)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(BuildRecord)


def encode(record: BuildRecord) -> bytes:
    """The record as JSON (bytes as base64)."""
    return _ENCODER.encode(record)


def decode(data: bytes) -> BuildRecord:
    """A record from its JSON; ValueError when it is not one (corrupt, truncated, other)."""
    try:
        record = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(str(exc)) from None
    if record.status not in STATUSES or len(record.ref) != REF_LENGTH:
        raise ValueError(f"not a build record (status {record.status!r}, ref {record.ref!r})")
    return record


__all__ = [
    "CANCELED",
    "COMPLETED",
    "DOCKERFILE_SOURCE_LIMIT",
    "ERROR",
    "BuildRecord",
    "LogChunk",
    "NodeRecord",
    "StatusRecord",
    "StepRecord",
    "WarningRecord",
    "decode",
    "encode",
    "new_ref",
]
