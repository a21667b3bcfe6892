"""A finished build's timeline report as data: every step per platform (and node) with its
queued and running time, the critical path, the slowest steps with their emulation factor,
the bytes moved, the cache hit rate and the advisor's suggestions; and the same as JSON.

A pure function of a history record (and earlier records, QEMU's measured factors): the HTML
page (html_report.py) and `history inspect --format json` are both drawn from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from polybuild.errors import PolybuildError
from polybuild.history.record import BuildRecord, StepRecord
from polybuild.history.show import rfc3339
from polybuild.insight.advisor import Advice, advise
from polybuild.insight.critical_path import critical_path, queued_seconds
from polybuild.insight.emulation_factor import Factor, FactorFinder
from polybuild.insight.step_map import parse_step_name
from polybuild.insight.transfers import Transfers, transfers

SLOWEST = 10  # rows of the slowest-steps table
SHARED_LANE = "shared steps"  # the lane of steps of no platform: loads, metadata, exports
CACHEABLE = (
    "Dockerfile steps that can come from the cache (RUN, COPY, ADD, WORKDIR, ...); FROM "
    "steps (never shown as cached), [internal] loads, exports and [auth] steps are left out"
)
ALL_CACHED = "the steps that would run emulated came from the cache: nothing ran under QEMU"


@dataclass(frozen=True, slots=True)
class StepBar:
    """One step on the timeline; times in seconds from the build's start."""

    vertex: str
    name: str
    platform: str
    node: str
    ready: float  # when its inputs were done (its start when it has none recorded)
    start: float
    end: float | None  # None: it never finished
    cached: bool
    emulated: bool
    cross: bool  # run on the build platform for another target (`linux/amd64->arm64`)
    error: str
    canceled: bool
    critical: bool

    @property
    def queued(self) -> float:
        return max(self.start - self.ready, 0.0)

    @property
    def seconds(self) -> float:
        return max((self.end if self.end is not None else self.start) - self.start, 0.0)


@dataclass(frozen=True, slots=True)
class Lane:
    """The steps of one platform (on one node when the build had several), by start."""

    key: str
    platform: str  # "" for the shared lane
    node: str
    label: str
    steps: tuple[StepBar, ...]


@dataclass(frozen=True, slots=True)
class SlowStep:
    """A row of the slowest-steps table."""

    name: str
    platform: str
    node: str
    seconds: float
    emulated: bool
    factor: Factor | None  # None for a failed or canceled step: its time is not a whole run
    outcome: str = ""  # "failed", "canceled" or "" (it ran to its end)


@dataclass(frozen=True, slots=True)
class CacheRate:
    cached: int
    cacheable: int  # the steps that could have come from the cache (CACHEABLE says which)

    @property
    def rate(self) -> float | None:
        return self.cached / self.cacheable if self.cacheable else None


@dataclass(frozen=True, slots=True)
class Report:
    ref: str
    name: str
    builder: str
    status: str
    error: str
    started: float  # the build's start, seconds since the epoch
    duration: float
    platforms: tuple[str, ...]
    nodes: tuple[tuple[str, tuple[str, ...]], ...]  # (label, platforms)
    dockerfile: str
    image_digest: str
    lanes: tuple[Lane, ...]
    critical_path: tuple[str, ...]  # vertices, first to last
    slowest: tuple[SlowStep, ...]
    transfers: Transfers
    cache: CacheRate
    advice: tuple[Advice, ...]
    advice_note: str  # why there is no advice to give, when there is none
    source_lines: tuple[tuple[int, str], ...] = ()  # the Dockerfile lines advice names


def _target(step: StepRecord) -> tuple[str, bool]:
    """The platform a step worked for, and whether it was a cross step."""
    name = parse_step_name(step.name)
    if name is None or not name.cross:
        return step.platform, False
    native, _, arch = name.platform.partition("->")
    return f"{native.split('/')[0]}/{arch}", True


def _lanes(record: BuildRecord, bars: Sequence[StepBar]) -> tuple[Lane, ...]:
    by_node = len({n.label for n in record.nodes}) > 1
    order = {p: i for i, p in enumerate(record.platforms)}
    grouped: dict[tuple[str, str], list[StepBar]] = {}
    for bar in bars:
        grouped.setdefault((bar.node if by_node else "", bar.platform), []).append(bar)

    def rank(key: tuple[str, str]) -> tuple[int, str, int, str]:
        node, platform = key
        return (0 if not platform else 1, node, order.get(platform, len(order)), platform)

    lanes = []
    for node, platform in sorted(grouped, key=rank):
        label = platform or SHARED_LANE
        if node:
            label += f" on {node}"
        steps = sorted(grouped[(node, platform)], key=lambda b: (b.start, b.name))
        key = f"{node}|{platform}" if node else platform or SHARED_LANE
        lanes.append(Lane(key, platform, node, label, tuple(steps)))
    return tuple(lanes)


def _cacheable(step: StepRecord) -> bool:
    """Whether the step could have come from the cache: a Dockerfile step but FROM."""
    name = parse_step_name(step.name)
    return name is not None and name.text.split(None, 1)[:1] != ["FROM"]


def _all_cached(steps: Sequence[StepRecord]) -> bool:
    """Whether nothing ran under QEMU because the cache had it: no emulated step ran, and
    some emulated step was cached, or every RUN step was (a cached step's record does not
    always say it would have been emulated)."""
    if any(s.emulated and not s.cached for s in steps):
        return False
    runs = [
        s
        for s in steps
        if (name := parse_step_name(s.name)) is not None
        and not name.cross
        and name.text.startswith("RUN")
    ]
    return any(s.emulated and s.cached for s in steps) or bool(runs and all(s.cached for s in runs))


def _outcome(step: StepRecord) -> str:
    if step.canceled:
        return "canceled"
    return "failed" if step.error else ""


def _advice(
    record: BuildRecord, factors: Mapping[str, float] | None, history: Sequence[BuildRecord]
) -> tuple[tuple[Advice, ...], str]:
    if not record.dockerfile_source:
        return (), "the build's record holds no Dockerfile (older, larger than 256 KiB or stdin)"
    filename = os.path.basename(record.dockerfile) if record.dockerfile not in ("", "-") else ""
    try:
        found = advise(
            record,
            record.dockerfile_source,
            factors=factors,
            history=history,
            filename=filename or "Dockerfile",
        )
    except (PolybuildError, ValueError) as exc:
        return (), f"the recorded Dockerfile cannot be read again: {exc}"
    if not found and _all_cached(record.steps):
        return (), ALL_CACHED
    if not found:
        return (), "no emulated step of 1 s or more would run faster natively"
    return found, ""


def build_report(
    record: BuildRecord,
    *,
    history: Sequence[BuildRecord] = (),
    factors: Mapping[str, float] | None = None,
    slowest: int = SLOWEST,
) -> Report:
    """The report of `record`; `history` holds earlier builds (newest first) for native
    twins, `factors` QEMU's measured slow-down per platform."""
    steps = record.steps
    queued = queued_seconds(steps, record.completed)
    critical = critical_path(steps, record.completed)
    on_path = set(critical)
    bars = []
    for step in steps:
        platform, cross = _target(step)
        start = step.started - record.started
        bars.append(
            StepBar(
                vertex=step.vertex,
                name=step.name,
                platform=platform,
                node=step.node,
                ready=start - queued.get(step.vertex, 0.0),
                start=start,
                end=None if step.completed is None else step.completed - record.started,
                cached=step.cached,
                emulated=step.emulated,
                cross=cross,
                error=step.error,
                canceled=step.canceled,
                critical=step.vertex in on_path,
            )
        )
    finder = FactorFinder(record, history, factors)
    ran = [s for s in steps if not s.cached and s.completed is not None]
    ran.sort(key=lambda s: (-(s.completed or 0.0) + s.started, s.name))
    table = tuple(
        SlowStep(
            s.name,
            s.platform,
            s.node,
            max((s.completed or s.started) - s.started, 0.0),
            s.emulated,
            finder.factor(s),
            _outcome(s),
        )
        for s in ran[: max(slowest, 0)]
    )
    cacheable = [s for s in steps if _cacheable(s)]
    cache = CacheRate(sum(1 for s in cacheable if s.cached), len(cacheable))
    advice, note = _advice(record, factors, history)
    lines = record.dockerfile_source.splitlines()
    wanted = sorted(
        {a.stage_line for a in advice}
        | {n for a in advice for n in range(a.line, min(a.end_line, a.line + 4) + 1)}
    )
    source = tuple((n, lines[n - 1]) for n in wanted if 0 < n <= len(lines))
    return Report(
        ref=record.ref,
        name=record.name,
        builder=record.builder,
        status=record.status,
        error=record.error,
        started=record.started,
        duration=record.duration,
        platforms=record.platforms,
        nodes=tuple((n.label, n.platforms) for n in record.nodes),
        dockerfile=record.dockerfile,
        image_digest=record.image_digest,
        lanes=_lanes(record, bars),
        critical_path=critical,
        slowest=table,
        transfers=transfers(record),
        cache=cache,
        advice=advice,
        advice_note=note,
        source_lines=source,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _bar_json(bar: StepBar) -> dict[str, object]:
    return {
        "vertex": bar.vertex,
        "name": bar.name,
        "platform": bar.platform,
        "node": bar.node,
        "queuedSeconds": _ms(bar.queued),
        "start": _ms(bar.start),
        "end": _ms(bar.end),
        "seconds": _ms(bar.seconds),
        "cached": bar.cached,
        "emulated": bar.emulated,
        "cross": bar.cross,
        "error": bar.error,
        "canceled": bar.canceled,
        "critical": bar.critical,
    }


def report_json(report: Report) -> dict[str, object]:
    """The report as JSON (camelCase keys; times in seconds from the build's start, rounded
    to the millisecond, with the start itself as `started` (epoch) and `startedAt`)."""
    rate = report.cache.rate
    t = report.transfers
    return {
        "ref": report.ref,
        "name": report.name,
        "builder": report.builder,
        "status": report.status,
        "error": report.error,
        "started": report.started,
        "startedAt": rfc3339(report.started),
        "durationSeconds": _ms(report.duration),
        "platforms": list(report.platforms),
        "nodes": [{"label": label, "platforms": list(p)} for label, p in report.nodes],
        "dockerfile": report.dockerfile,
        "image": report.image_digest,
        "lanes": [
            {
                "key": lane.key,
                "label": lane.label,
                "platform": lane.platform,
                "node": lane.node,
                "steps": [_bar_json(b) for b in lane.steps],
            }
            for lane in report.lanes
        ],
        "criticalPath": list(report.critical_path),
        "slowest": [
            {
                "name": s.name,
                "platform": s.platform,
                "node": s.node,
                "seconds": _ms(s.seconds),
                "emulated": s.emulated,
                "factor": None if s.factor is None else round(s.factor.value, 2),
                "factorBasis": "" if s.factor is None else s.factor.basis,
                "outcome": s.outcome,
            }
            for s in report.slowest
        ],
        "transfers": {
            "pulledBytes": t.pulled_bytes,
            "pulledBlobs": t.pulled_blobs,
            "contextBytes": t.context_bytes,
            "pushedBytes": t.pushed_bytes,
            "pushedTo": list(t.pushed_to),
            "exportedBytes": t.exported_bytes,
        },
        "cache": {
            "cached": report.cache.cached,
            "cacheable": report.cache.cacheable,
            "rate": None if rate is None else round(rate, 4),
            "counts": CACHEABLE,
        },
        "advice": [a.to_json() for a in report.advice],
        "adviceNote": report.advice_note,
    }


__all__ = [
    "ALL_CACHED",
    "CACHEABLE",
    "SHARED_LANE",
    "SLOWEST",
    "CacheRate",
    "Lane",
    "Report",
    "SlowStep",
    "StepBar",
    "build_report",
    "report_json",
]
