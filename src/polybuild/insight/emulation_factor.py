"""How much slower a step ran because it was emulated: its time over the native time of the
same step (a twin run natively for another platform of the build, else the same text of
the same stage in an earlier build), else QEMU's slow-down measured on this machine for its
platform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from polybuild.history.record import BuildRecord, StepRecord
from polybuild.insight.advisor import (
    ESTIMATE,
    HISTORY,
    TWIN,
    history_twin,
    native_twins,
    platform_factor,
    whole_run_seconds,
)
from polybuild.insight.step_map import parse_step_name


@dataclass(frozen=True, slots=True)
class Factor:
    """An emulated step's slow-down and where it comes from (TWIN, HISTORY or ESTIMATE, the
    latter QEMU's measured factor for the platform)."""

    value: float
    basis: str


class FactorFinder:
    """Factors for the emulated steps of one build, by the advisor's rules: a twin in the
    build, else in an earlier build (`history`, newest first), else the platform's measured
    factor."""

    def __init__(
        self,
        record: BuildRecord,
        history: Sequence[BuildRecord] = (),
        factors: Mapping[str, float] | None = None,
    ) -> None:
        self._twins = native_twins(record)
        self._history = history
        self._factors = factors or {}

    def factor(self, step: StepRecord) -> Factor | None:
        """The step's slow-down; None for a native, cached, failed, canceled or unfinished
        step (its time is not the step's whole run), an instant one, or one with neither a
        twin nor a measured factor."""
        seconds = whole_run_seconds(step)
        if not step.emulated or not seconds:  # None, or an instant step: no ratio to give
            return None
        name = parse_step_name(step.name)
        if name is not None:
            native = self._twins.get((name.stage, name.number))
            if native:
                return Factor(seconds / native, TWIN)
            native = history_twin(self._history, name)
            if native:
                return Factor(seconds / native, HISTORY)
        measured = platform_factor(self._factors, step.platform)
        return Factor(measured, ESTIMATE) if measured else None


__all__ = ["Factor", "FactorFinder"]
