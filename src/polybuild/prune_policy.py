"""What `prune --filter until=... --reserved-space/--keep-storage --max-used-space
--min-free-space` keep of the build cache, as buildx and BuildKit read them, and which of
this machine's cache records go under such a policy (least recently used first)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import UsageError
from polybuild.units import parse_duration, parse_size


@dataclass(frozen=True, slots=True)
class PrunePolicy:
    """Empty: remove everything (what `prune` did alone)."""

    keep_duration: float | None = None  # seconds: records used more recently stay
    reserved_space: int | None = None  # bytes of cache always kept
    max_used_space: int | None = None  # bytes the cache may use at most
    min_free_space: int | None = None  # bytes of the disk to leave free

    @property
    def empty(self) -> bool:
        return all(
            v is None
            for v in (self.keep_duration, self.reserved_space, self.max_used_space,
                      self.min_free_space)
        )  # fmt: skip


def parse_policy(
    filters: Sequence[str],
    reserved: str | None = None,
    max_used: str | None = None,
    min_free: str | None = None,
) -> PrunePolicy:
    """The flags' values; UsageError naming the flag. Of the filters only `until` is
    understood here (BuildKit's others name its own record types)."""
    keep: float | None = None
    for item in filters:
        key, sep, value = item.partition("=")
        if key.strip() != "until" or not sep:
            raise UsageError(
                f"--filter {item!r}: only until=DURATION is supported",
                hint="e.g. --filter until=24h",
            )
        keep = parse_duration(value, "--filter until")
    return PrunePolicy(
        keep,
        parse_size(reserved, "--reserved-space") if reserved else None,
        parse_size(max_used, "--max-used-space") if max_used else None,
        parse_size(min_free, "--min-free-space") if min_free else None,
    )


Entry = tuple[str, float, tuple[str, ...]]  # key, last used, blob digests


def doomed(
    policy: PrunePolicy,
    entries: Sequence[Entry],
    size_of: Callable[[str], int],
    free_space: Callable[[], int],
    now: float | None = None,
) -> list[str]:
    """The keys to remove, oldest use first: those unused for longer than keep_duration,
    then more until the cache's blobs fit max_used_space (and no less than reserved_space
    is kept), and until the disk has min_free_space."""
    now = time.time() if now is None else now
    if policy.empty:
        return [key for key, _, _ in entries]
    remaining = list(entries)
    removed: list[str] = []

    def used() -> int:
        return sum(size_of(b) for b in {b for _, _, blobs in remaining for b in blobs})

    def drop_oldest() -> None:
        removed.append(remaining.pop(0)[0])

    if policy.keep_duration is not None:
        while remaining and remaining[0][1] < now - policy.keep_duration:
            drop_oldest()
    floor = policy.reserved_space or 0
    if policy.max_used_space is not None:
        limit = max(policy.max_used_space, floor)
        while remaining and used() > limit:
            drop_oldest()
    if policy.min_free_space is not None:
        freed_before = used()
        while remaining and used() > floor:
            if free_space() + (freed_before - used()) >= policy.min_free_space:
                break
            drop_oldest()
    return removed


def disk_free(path: Path) -> Callable[[], int]:
    def free() -> int:
        stat = os.statvfs(path)
        return stat.f_bavail * stat.f_frsize

    return free


__all__ = ["PrunePolicy", "disk_free", "doomed", "parse_policy"]
