"""`history ls --filter` as buildx reads it: ref/repository/status with = or !=, and
startedAt/completedAt/duration compared with <, <=, > or >= (a Go duration or RFC 3339)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime

from polybuild.errors import UsageError
from polybuild.history.record import BuildRecord

Match = Callable[[BuildRecord], bool]
_SEPARATORS = ("!=", "=", "<=", "<", ">=", ">")  # tried in this order, as buildx
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def go_duration(text: str) -> float | None:
    """Seconds of a Go duration (`1h30m`, `90s`, `1.5h`); None when it is not one."""
    body = text.lstrip("+-")
    if not body or _DURATION.sub("", body):
        return None
    seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(body))
    return -seconds if text.startswith("-") else seconds


def _value(record: BuildRecord, key: str) -> str:
    if key == "ref":
        return record.ref
    if key == "repository":
        return record.options.get("vcs:source", "")
    return record.status


def _compare(value: float, sep: str, other: float) -> bool:
    if sep == ">=":
        return value >= other
    if sep == "<=":
        return value <= other
    return value > other if sep == ">" else value < other


def parse_filter(spec: str, now: float) -> Match:
    """One filter; UsageError in buildx's words for a bad one."""
    found = next(((spec.split(sep, 1), sep) for sep in _SEPARATORS if sep in spec), None)
    if found is None:
        raise UsageError(f'invalid filter "{spec}"')
    (key, value), sep = found
    if key in ("ref", "repository", "status"):
        if sep not in ("=", "!="):
            raise UsageError(f'invalid separator for "{spec}", expected = or !=')
        if sep == "!=":
            return lambda r: _value(r, key) != value
        if key == "status":
            return lambda r: _value(r, key) == value
        return lambda r: value in _value(r, key)
    if key in ("startedAt", "completedAt", "duration"):
        if sep in ("=", "!="):
            raise UsageError(f'invalid separator for "{spec}", expected <=, <, >= or >')
        seconds = go_duration(value)
        if key == "duration":
            if seconds is None:
                raise UsageError(f"invalid duration {value}")
            limit = seconds
            return lambda r: _compare(r.duration, sep, limit)
        if seconds is not None:
            point = int(now - seconds)
        else:
            try:
                point = int(datetime.fromisoformat(value).timestamp())
            except ValueError:
                raise UsageError(f"invalid time {value}") from None
        attribute = "started" if key == "startedAt" else "completed"
        return lambda r: _compare(int(getattr(r, attribute)), sep, point)
    raise UsageError(f'unsupported filter "{spec}"')


def apply_filters(
    records: Sequence[BuildRecord], specs: Sequence[str], now: float
) -> list[BuildRecord]:
    matchers = [parse_filter(spec, now) for spec in specs]
    return [r for r in records if all(match(r) for match in matchers)]


__all__ = ["apply_filters", "go_duration", "parse_filter"]
