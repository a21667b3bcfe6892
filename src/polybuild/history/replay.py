"""A record's steps as progress events again, for `history logs` (any renderer)."""

from __future__ import annotations

from polybuild.history.record import BuildRecord
from polybuild.platforms import parse
from polybuild.progress.events import (
    BuildWarning,
    Event,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)


def replay_events(record: BuildRecord) -> list[Event]:
    """The recorded events in time order: each step's start, its statuses and output, its
    end (a step that never ended ends as canceled at the build's end), then the warnings."""
    timed: list[tuple[float, int, Event]] = []
    order = 0

    def add(when: float, event: Event) -> None:
        nonlocal order
        timed.append((when, order, event))
        order += 1

    for step in record.steps:
        platform = parse(step.platform) if step.platform else None
        add(
            step.started,
            VertexStarted(
                step.vertex, step.name, step.started, platform, step.emulated, step.inputs
            ),
        )
        for status in step.statuses:
            add(
                status.timestamp,
                VertexStatus(
                    step.vertex,
                    status.id,
                    status.timestamp,
                    status.current,
                    status.total,
                    status.name,
                    status.started,
                    status.completed,
                ),
            )
        if step.clipped:
            note = f"[output clipped: the first {step.clipped} bytes were not kept]\n"
            add(step.started, VertexLog(step.vertex, note.encode(), step.started))
        for chunk in step.logs:
            add(chunk.timestamp, VertexLog(step.vertex, chunk.data, chunk.timestamp, chunk.stream))
        if step.completed is None:
            end = VertexCompleted(step.vertex, record.completed, error="canceled", canceled=True)
        else:
            end = VertexCompleted(
                step.vertex, step.completed, step.cached, step.error or None, step.canceled
            )
        add(end.completed, end)
    events = [event for _, _, event in sorted(timed, key=lambda t: (t[0], t[1]))]
    events.extend(
        BuildWarning(w.message, w.timestamp, w.vertex or None, w.detail, w.url)
        for w in record.warnings
    )
    return events


__all__ = ["replay_events"]
