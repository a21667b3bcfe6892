"""The emulation advisor: which emulated RUN steps of a finished build cost the most, what they
would cost natively, and the Dockerfile line to change.

A step's native time is its twin's: the same step of the same stage, run natively (not cached)
for another platform of the same build, else of an earlier build (same stage, same text). With
no twin, QEMU's slow-down factor for the platform (measured by `polybuild binfmt --bench`)
gives an estimate. Steps of stages that already run on the build platform are never flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from polybuild.dockerfile import Dockerfile, load
from polybuild.history.record import BuildRecord, StepRecord
from polybuild.insight.step_map import StepName, find_run, parse_step_name, runs_per_target

TWIN = "twin"  # native time measured: a twin in this build
HISTORY = "history"  # native time measured: a twin in an earlier build
ESTIMATE = "estimate"  # native time estimated from QEMU's measured slow-down
MIN_SECONDS = 1.0  # emulated steps shorter than this are not worth moving
FIX = "build this stage with FROM --platform=$BUILDPLATFORM and cross-compile for $TARGETARCH"
_TEXT_WIDTH = 60


@dataclass(frozen=True, slots=True)
class Advice:
    """One emulated RUN step worth moving to the build platform."""

    filename: str
    line: int  # the RUN's first line
    end_line: int  # its last (continuations, heredocs)
    stage: str  # the stage's display name (`build`, `stage-1`)
    stage_line: int  # the stage's FROM line, the one to change
    instruction: str  # the step's text, `RUN make`
    platform: str
    emulated_seconds: float
    native_seconds: float
    basis: str  # TWIN, HISTORY or ESTIMATE

    @property
    def ratio(self) -> float:
        return self.emulated_seconds / self.native_seconds if self.native_seconds > 0 else 0.0

    @property
    def saved_seconds(self) -> float:
        return max(self.emulated_seconds - self.native_seconds, 0.0)

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.line}"

    @property
    def message(self) -> str:
        """`Dockerfile:7 RUN make  linux/arm64  41.2 s emulated vs 4.9 s native (8.4x): build
        this stage with FROM --platform=$BUILDPLATFORM ...`; an estimate says so."""
        text = self.instruction
        if len(text) > _TEXT_WIDTH:
            text = text[: _TEXT_WIDTH - 3] + "..."
        native = f"{self.native_seconds:.1f} s native"
        factor = f"{self.ratio:.1f}x"
        if self.basis == ESTIMATE:
            native, factor = "~" + native, factor + ", estimated from QEMU's measured slow-down"
        elif self.basis == HISTORY:
            factor += ", native time from an earlier build"
        return (
            f"{self.location} {text}  {self.platform}  {self.emulated_seconds:.1f} s emulated"
            f" vs {native} ({factor}): {FIX} ({self.filename}:{self.stage_line})"
        )

    def to_json(self) -> dict[str, object]:
        """The advice for --metadata-file and `--format json` (seconds to the millisecond)."""
        return {
            "file": self.filename,
            "line": self.line,
            "endLine": self.end_line,
            "stage": self.stage,
            "stageLine": self.stage_line,
            "instruction": self.instruction,
            "platform": self.platform,
            "emulatedSeconds": round(self.emulated_seconds, 3),
            "nativeSeconds": round(self.native_seconds, 3),
            "ratio": round(self.ratio, 2),
            "savedSeconds": round(self.saved_seconds, 3),
            "basis": self.basis,
            "message": self.message,
        }


def whole_run_seconds(step: StepRecord) -> float | None:
    """How long a step ran, None unless it ran to the end (not cached, no error)."""
    if step.completed is None or step.cached or step.error or step.canceled:
        return None
    return max(step.completed - step.started, 0.0)


def _native(step: StepRecord) -> float | None:
    """A native step's whole run; None for an instant one too (no time to compare with)."""
    seconds = None if step.emulated else whole_run_seconds(step)
    return seconds if seconds else None


def native_twins(record: BuildRecord) -> dict[tuple[str, int], float]:
    """(stage label, step number) -> the longest native run of that step in a build: the
    conservative twin (it never overstates what moving the step saves)."""
    found: dict[tuple[str, int], float] = {}
    for step in record.steps:
        name, seconds = parse_step_name(step.name), _native(step)
        if name is not None and seconds is not None:
            key = (name.stage, name.number)
            found[key] = max(found.get(key, 0.0), seconds)
    return found


def history_twin(history: Sequence[BuildRecord], name: StepName) -> float | None:
    """The native time of the same stage's same text in the newest earlier build that has it."""
    for record in history:
        times = [
            seconds
            for step in record.steps
            if (other := parse_step_name(step.name)) is not None
            and (other.stage, other.text) == (name.stage, name.text)
            and (seconds := _native(step)) is not None
        ]
        if times:
            return max(times)
    return None


def platform_factor(factors: Mapping[str, float], platform: str) -> float | None:
    """The platform's slow-down factor; `linux/arm/v6` falls back to `linux/arm`, then to
    another variant of the same architecture (`binfmt --bench` measures one per emulator)."""
    base = "/".join(platform.split("/")[:2])
    for key in (platform, base):
        factor = factors.get(key)
        if factor is not None and factor > 0:
            return factor
    same_arch = [f for key, f in sorted(factors.items()) if key.startswith(base + "/") and f > 0]
    return same_arch[0] if same_arch else None


def advise(
    record: BuildRecord,
    dockerfile: str | bytes | Dockerfile,
    *,
    factors: Mapping[str, float] | None = None,
    history: Sequence[BuildRecord] = (),
    filename: str = "Dockerfile",
    min_seconds: float = MIN_SECONDS,
) -> tuple[Advice, ...]:
    """Advice for each emulated, non-cached RUN step of `record` that ran at least
    `min_seconds` and would run faster natively, most seconds saved first. `factors` are
    QEMU's slow-down per platform (`linux/arm64` -> 8.1); `history` holds earlier builds,
    newest first, searched for a native twin when the build has none."""
    parsed = (
        dockerfile if isinstance(dockerfile, Dockerfile) else load(dockerfile, filename=filename)
    )
    twins = native_twins(record)
    advice: list[Advice] = []
    for step in record.steps:
        seconds = whole_run_seconds(step)
        name = parse_step_name(step.name)
        if not step.emulated or seconds is None or seconds < min_seconds or name is None:
            continue
        found = None if name.cross else find_run(parsed, name)
        if found is None or not runs_per_target(parsed, found[0]):
            continue
        stage, run = found
        native, basis = twins.get((name.stage, name.number)), TWIN
        if native is None:
            native, basis = history_twin(history, name), HISTORY
        if native is None:
            factor = platform_factor(factors or {}, step.platform)
            native, basis = (seconds / factor if factor else None), ESTIMATE
        if native is None or native >= seconds:
            continue
        advice.append(
            Advice(
                filename=filename,
                line=run.location.start,
                end_line=run.location.end,
                stage=stage.display_name,
                stage_line=stage.location.start,
                instruction=name.text,
                platform=step.platform or name.platform,
                emulated_seconds=seconds,
                native_seconds=native,
                basis=basis,
            )
        )
    advice.sort(key=lambda a: (-a.saved_seconds, a.line, a.platform))
    return tuple(advice)


__all__ = [
    "ESTIMATE",
    "FIX",
    "HISTORY",
    "MIN_SECONDS",
    "TWIN",
    "Advice",
    "advise",
    "history_twin",
    "native_twins",
    "platform_factor",
    "whole_run_seconds",
]
