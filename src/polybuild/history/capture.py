"""A build's progress events folded into step records, each step's output bounded."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from polybuild.history.record import LogChunk, NodeRecord, StatusRecord, StepRecord, WarningRecord
from polybuild.platforms import format_platform
from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)

# The tail of each step's output that a record keeps. BuildKit clips a step's log at 2 MiB
# (BUILDKIT_STEP_LOG_MAX_SIZE) and buildx shows a failed step's last lines; a history of
# 50 builds keeps the last 64 KiB per step, enough for any error and its context.
STEP_LOG_LIMIT = 64 << 10


@dataclass(slots=True)
class _Step:
    record: StepRecord
    logs: list[LogChunk] = field(default_factory=list)
    size: int = 0
    clipped: int = 0
    statuses: dict[str, StatusRecord] = field(default_factory=dict)

    def add_log(self, chunk: LogChunk, limit: int) -> None:
        self.logs.append(chunk)
        self.size += len(chunk.data)
        while self.size > limit and self.logs:
            excess = self.size - limit
            first = self.logs[0]
            if len(first.data) <= excess:
                self.logs.pop(0)
                dropped = len(first.data)
            else:
                self.logs[0] = dataclasses.replace(first, data=first.data[excess:])
                dropped = excess
            self.size -= dropped
            self.clipped += dropped


def _node(nodes: Sequence[NodeRecord], vertex: str) -> str:
    """The node whose steps' ids start with its prefix (the longest; this machine's is "")."""
    best: NodeRecord | None = None
    for node in nodes:
        if vertex.startswith(node.vertex_prefix) and (
            best is None or len(node.vertex_prefix) > len(best.vertex_prefix)
        ):
            best = node
    return best.label if best is not None else ""


def capture_steps(
    events: Iterable[Event], nodes: Sequence[NodeRecord], *, log_limit: int = STEP_LOG_LIMIT
) -> tuple[tuple[StepRecord, ...], tuple[WarningRecord, ...]]:
    """Every vertex that started, in start order, and every warning. A vertex that started
    again (a second solve of the same op) keeps its first start and its last end."""
    steps: dict[str, _Step] = {}
    warnings: list[WarningRecord] = []
    for event in events:
        if isinstance(event, VertexStarted):
            if event.vertex in steps:
                continue
            platform = format_platform(event.platform) if event.platform is not None else ""
            steps[event.vertex] = _Step(
                StepRecord(
                    vertex=event.vertex,
                    name=event.name,
                    started=event.started,
                    platform=platform,
                    node=_node(nodes, event.vertex),
                    emulated=event.emulated,
                    inputs=event.inputs,
                )
            )
        elif isinstance(event, VertexCompleted) and event.vertex in steps:
            step = steps[event.vertex]
            step.record = dataclasses.replace(
                step.record,
                completed=event.completed,
                cached=event.cached,
                error=event.error or "",
                canceled=event.canceled,
            )
        elif isinstance(event, VertexLog) and event.vertex in steps:
            steps[event.vertex].add_log(
                LogChunk(event.timestamp, event.stream, event.data), log_limit
            )
        elif isinstance(event, VertexStatus) and event.vertex in steps:
            steps[event.vertex].statuses[event.id] = StatusRecord(
                event.id,
                event.timestamp,
                event.current,
                event.total,
                event.name,
                event.started,
                event.completed,
            )
        elif isinstance(event, BuildWarning):
            warnings.append(
                WarningRecord(
                    event.message, event.timestamp, event.vertex or "", event.detail, event.url
                )
            )
    records = tuple(
        dataclasses.replace(
            step.record,
            logs=tuple(step.logs),
            clipped=step.clipped,
            statuses=tuple(step.statuses.values()),
        )
        for step in steps.values()
    )
    return records, tuple(warnings)


__all__ = ["STEP_LOG_LIMIT", "capture_steps"]
