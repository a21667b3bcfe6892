"""Sizes and durations as docker and buildx flags write them: `64m`, `1.5GB`, `512k`, plain
bytes; Go durations `24h`, `90m`, `1h30m`, `2.5s`."""

from __future__ import annotations

import re

from polybuild.errors import UsageError

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_size(value: str, flag: str) -> int:
    """Bytes; UsageError naming `flag` for anything else."""
    match = _SIZE.match(value.strip())
    if match is None:
        raise UsageError(f"{flag} {value!r}: expected a size such as 64m, 10GB or 512k")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_duration(value: str, flag: str) -> float:
    """Seconds of a Go duration (`24h`, `1h30m`, `90s`); UsageError naming `flag`."""
    text = value.strip()
    parts = _DURATION.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise UsageError(f"{flag} {value!r}: expected a duration such as 24h, 90m or 1h30m")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


__all__ = ["parse_duration", "parse_size"]
