"""The emulation report: which steps ran under QEMU, how long they took, and what to do if slow.

Printed after a build. A step that ran emulated for longer than the threshold gets the
usual remedy: do that work in a stage `FROM --platform=$BUILDPLATFORM` (natively, cross-
compiling for $TARGETPLATFORM) and COPY its result into the target stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from polybuild.platforms import Platform, format_platform
from polybuild.progress.events import Event, VertexCompleted, VertexStarted
from polybuild.progress.sanitize import clean

SLOW_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class EmulatedStep:
    """A step that ran under emulation (cached steps did not run and are left out)."""

    name: str
    platform: Platform | None
    seconds: float
    failed: bool


@dataclass(frozen=True, slots=True)
class EmulationReport:
    """Emulated steps, slowest first, and the threshold that makes one slow."""

    steps: tuple[EmulatedStep, ...]
    threshold: float = SLOW_SECONDS

    @property
    def total_seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    @property
    def slow(self) -> tuple[EmulatedStep, ...]:
        return tuple(step for step in self.steps if step.seconds >= self.threshold)

    def render(self) -> str:
        """The report as plain text; empty when nothing ran under emulation."""
        if not self.steps:
            return ""
        width = max(len(step.name) for step in self.steps)
        platform_width = max(len(_platform(step)) for step in self.steps)
        lines = [
            f"Emulated steps: {len(self.steps)}, {format_duration(self.total_seconds)} in total "
            "under QEMU",
        ]
        for step in self.steps:
            mark = "  (failed)" if step.failed else ""
            lines.append(
                f"  {format_duration(step.seconds):>8}  {_platform(step):<{platform_width}}  "
                f"{step.name:<{width}}{mark}".rstrip()
            )
        if self.slow:
            lines.append("")
            lines.append(
                f"{len(self.slow)} step{'s' if len(self.slow) > 1 else ''} took longer than "
                f"{format_duration(self.threshold)} under emulation. Emulated CPUs are many "
                "times slower than native ones: do heavy work (compiling, installing "
                "dependencies) in a stage `FROM --platform=$BUILDPLATFORM ...` that "
                "cross-compiles for $TARGETPLATFORM, then COPY --from that stage."
            )
        return "\n".join(lines)


def _platform(step: EmulatedStep) -> str:
    return format_platform(step.platform) if step.platform else "-"


def format_duration(seconds: float) -> str:
    """1.2s, 45.0s, 3m12s, 1h02m."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def emulation_report(
    events: Iterable[Event], *, threshold: float = SLOW_SECONDS
) -> EmulationReport:
    """The report from a build's events (e.g. a Recorder's); steps slowest first."""
    started: dict[str, VertexStarted] = {}
    steps: list[EmulatedStep] = []
    for event in events:
        if isinstance(event, VertexStarted) and event.emulated:
            started.setdefault(event.vertex, event)
        elif isinstance(event, VertexCompleted) and event.vertex in started:
            if event.cached:
                continue
            begin = started.pop(event.vertex)
            steps.append(
                EmulatedStep(
                    clean(begin.name),  # a Dockerfile's text: no escape reaches the terminal
                    begin.platform,
                    max(event.completed - begin.started, 0.0),
                    event.error is not None,
                )
            )
    steps.sort(key=lambda step: (-step.seconds, step.name))
    return EmulationReport(tuple(steps), threshold)


__all__ = ["SLOW_SECONDS", "EmulatedStep", "EmulationReport", "emulation_report", "format_duration"]
