"""`--ulimit NAME=SOFT[:HARD]` and `--shm-size SIZE`, as docker and buildx read them: the
resource limits and the /dev/shm size of every RUN step (part of their cache keys, as in
BuildKit's exec op)."""

from __future__ import annotations

from collections.abc import Iterable

from polybuild.errors import UsageError
from polybuild.units import parse_size

# docker's names (go-units) -> the rlimit runc takes
RLIMITS = {
    name: f"RLIMIT_{name.upper()}"
    for name in ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                 "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
}  # fmt: skip


def parse_ulimits(values: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    """(name, soft, hard) per value; the last value for a name wins, as docker's."""
    found: dict[str, tuple[str, int, int]] = {}
    for value in values:
        name, sep, limits = value.partition("=")
        name = name.strip().lower()
        if not sep or name not in RLIMITS:
            raise UsageError(
                f"--ulimit {value!r}: expected NAME=SOFT[:HARD] with NAME one of "
                + ", ".join(sorted(RLIMITS))
            )
        soft_text, _, hard_text = limits.partition(":")
        try:
            soft = int(soft_text)
            hard = int(hard_text) if hard_text else soft
        except ValueError:
            raise UsageError(f"--ulimit {value!r}: limits must be integers") from None
        if soft > hard:
            raise UsageError(f"--ulimit {value!r}: soft limit {soft} exceeds hard limit {hard}")
        if soft < -1 or hard < -1:
            raise UsageError(f"--ulimit {value!r}: invalid limit")
        found[name] = (name, soft, hard)
    return tuple(found.values())


def parse_shm_size(value: str | None) -> int | None:
    """Bytes of /dev/shm (docker's units: 64m, 1g, 512k, plain bytes); None: the default."""
    if value is None or value == "":
        return None
    size = parse_size(value, "--shm-size")
    if size <= 0:
        raise UsageError(f"--shm-size {value!r}: the size must be greater than 0")
    return size


__all__ = ["RLIMITS", "parse_shm_size", "parse_ulimits"]
