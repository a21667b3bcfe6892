"""The shape of a build in time: how long each step waited for its inputs, and the chain of
steps that decided when the build's graph finished (its critical path).

Both read only the steps' times and `inputs` (vertex ids); an input that is not a step of
the record (a named context, a vertex of another node's record) is ignored. A step that
never finished counts as ending when the build did.
"""

from __future__ import annotations

from collections.abc import Sequence

from polybuild.history.record import StepRecord


def _ends(steps: Sequence[StepRecord], build_end: float) -> dict[str, float]:
    """Each vertex's end (the latest, should a vertex appear twice)."""
    ends: dict[str, float] = {}
    for step in steps:
        end = step.completed if step.completed is not None else max(build_end, step.started)
        ends[step.vertex] = max(ends.get(step.vertex, end), end)
    return ends


def queued_seconds(steps: Sequence[StepRecord], build_end: float) -> dict[str, float]:
    """vertex -> seconds from the moment its last input was done to its start (0 for a step
    with no recorded input, or one that started before an input ended: a cache lookup)."""
    ends = _ends(steps, build_end)
    queued: dict[str, float] = {}
    for step in steps:
        ready = [ends[i] for i in step.inputs if i in ends and i != step.vertex]
        queued[step.vertex] = max(step.started - max(ready), 0.0) if ready else 0.0
    return queued


def _last(steps: Sequence[StepRecord], ends: dict[str, float]) -> StepRecord:
    """The step the path ends at: the one that failed last (a failed build ends there; the
    steps canceled after it do not count), else the last to finish, else the last of all."""
    failed = [s for s in steps if s.error and not s.canceled]
    finished = [s for s in steps if s.completed is not None and not s.canceled]
    return max(failed or finished or steps, key=lambda s: (ends[s.vertex], s.started))


def critical_path(steps: Sequence[StepRecord], build_end: float) -> tuple[str, ...]:
    """The vertices of the critical path, first to last.

    It ends at the step that failed (in a failed build) or else at the last step to finish
    (canceled steps never end it), and runs back through the input that ended last to a
    step with none. A last step with no recorded inputs that no step depends on (the final
    `exporting to image`, which BuildKit lists without its inputs) is appended to the path
    of the step of the graph (steps with inputs, or inputs of others) that ended last
    before it started.
    """
    if not steps:
        return ()
    ends = _ends(steps, build_end)
    by_vertex = {s.vertex: s for s in steps}
    linked = {i for s in steps for i in s.inputs if i in by_vertex}
    linked |= {s.vertex for s in steps if any(i in by_vertex for i in s.inputs)}
    last = _last(steps, ends)
    tail: list[str] = []
    if last.vertex not in linked:
        before = [
            s
            for s in steps
            if s.vertex in linked and not s.canceled and ends[s.vertex] <= last.started + 1e-6
        ]
        if before:
            tail = [last.vertex]
            last = max(before, key=lambda s: (ends[s.vertex], s.started))
    path = [last.vertex]
    seen = {last.vertex, *tail}
    current = last
    while True:
        inputs = [i for i in current.inputs if i in by_vertex and i not in seen]
        if not inputs:
            break
        previous = max(inputs, key=lambda i: (ends[i], by_vertex[i].started))
        path.append(previous)
        seen.add(previous)
        current = by_vertex[previous]
    return (*reversed(path), *tail)


__all__ = ["critical_path", "queued_seconds"]
