"""How much slower a step ran because it was emulated: its time over the native time of the
same step (a twin run natively for another platform of the build, else the same text of
the same stage in an earlier build), else QEMU's slow-down measured on this machine for its
platform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from polybuild.history.record import BuildRecord, StepRecord
from polybuild.insight.advisor import ESTIMATE, HISTORY, TWIN, platform_factor
from polybuild.insight.step_map import parse_step_name


@dataclass(frozen=True, slots=True)
class Factor:
    """An emulated step's slow-down and where it comes from (TWIN, HISTORY or ESTIMATE, the
    latter QEMU's measured factor for the platform)."""

    value: float
    basis: str


def _cut_short(step: StepRecord) -> bool:
    """Whether the step did not run to its end: it failed, was canceled or never finished."""
    return bool(step.error) or step.canceled or step.completed is None


def _native_seconds(step: StepRecord) -> float | None:
    if step.emulated or step.cached or step.completed is None or _cut_short(step):
        return None
    seconds = step.completed - step.started
    return seconds if seconds > 0 else None


class FactorFinder:
    """Factors for the emulated steps of one build."""

    def __init__(
        self,
        record: BuildRecord,
        history: Sequence[BuildRecord] = (),
        factors: Mapping[str, float] | None = None,
    ) -> None:
        self._twins: dict[tuple[str, int], float] = {}
        for step in record.steps:
            name, seconds = parse_step_name(step.name), _native_seconds(step)
            if name is not None and seconds is not None:
                key = (name.stage, name.number)
                self._twins[key] = max(self._twins.get(key, 0.0), seconds)
        self._history = history
        self._factors = factors or {}

    def _earlier(self, stage: str, text: str) -> float | None:
        for record in self._history:
            times = [
                seconds
                for step in record.steps
                if (name := parse_step_name(step.name)) is not None
                and (name.stage, name.text) == (stage, text)
                and (seconds := _native_seconds(step)) is not None
            ]
            if times:
                return max(times)
        return None

    def _measured(self, platform: str) -> float | None:
        return platform_factor(self._factors, platform)  # the advisor's rule, variants too

    def factor(self, step: StepRecord) -> Factor | None:
        """The step's slow-down; None for a native, cached, failed, canceled or unfinished
        step (its time is not the step's whole run), or one with neither a twin nor a
        measured factor."""
        if not step.emulated or step.cached or step.completed is None or _cut_short(step):
            return None
        seconds = step.completed - step.started
        if seconds <= 0:  # an instant step (or a clock that went back): no ratio to give
            return None
        name = parse_step_name(step.name)
        if name is not None:
            native = self._twins.get((name.stage, name.number))
            if native:
                return Factor(seconds / native, TWIN)
            native = self._earlier(name.stage, name.text)
            if native:
                return Factor(seconds / native, HISTORY)
        measured = self._measured(step.platform)
        return Factor(measured, ESTIMATE) if measured else None


__all__ = ["Factor", "FactorFinder"]
