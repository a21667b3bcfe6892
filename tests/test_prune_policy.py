"""Which build cache records `prune --filter until= --reserved-space --max-used-space
--min-free-space` removes: least recently used first, as BuildKit's policies."""

from __future__ import annotations

import pytest

from polybuild.errors import UsageError
from polybuild.prune_policy import PrunePolicy, doomed, parse_policy
from polybuild.units import parse_duration, parse_size

NOW = 1_000_000.0
# key, last used, blobs (each blob 100 bytes; "shared" is in two records)
ENTRIES = [
    ("old", NOW - 7200, ("a", "shared")),
    ("mid", NOW - 1800, ("b", "shared")),
    ("new", NOW - 60, ("c",)),
]


def size(blob: str) -> int:
    return 100


def test_no_policy_removes_everything() -> None:
    assert doomed(PrunePolicy(), ENTRIES, size, lambda: 0, NOW) == ["old", "mid", "new"]


def test_until_removes_what_was_not_used_since() -> None:
    assert doomed(parse_policy(["until=1h"]), ENTRIES, size, lambda: 0, NOW) == ["old"]
    assert doomed(parse_policy(["until=10m"]), ENTRIES, size, lambda: 0, NOW) == ["old", "mid"]


def test_max_used_space_counts_shared_blobs_once() -> None:
    # 4 distinct blobs: 400 bytes; dropping "old" frees only "a" (shared stays)
    policy = parse_policy([], max_used="300")
    assert doomed(policy, ENTRIES, size, lambda: 0, NOW) == ["old"]
    policy = parse_policy([], max_used="150")
    assert doomed(policy, ENTRIES, size, lambda: 0, NOW) == ["old", "mid"]


def test_reserved_space_is_kept_whatever_else_asks() -> None:
    policy = parse_policy([], reserved="300", max_used="100")
    assert doomed(policy, ENTRIES, size, lambda: 0, NOW) == ["old"]


def test_min_free_space_removes_until_the_disk_has_it() -> None:
    policy = parse_policy([], min_free="1k")
    assert doomed(policy, ENTRIES, size, lambda: 1024 - 150, NOW) == ["old", "mid"]
    assert doomed(policy, ENTRIES, size, lambda: 4096, NOW) == []


def test_values_as_buildx_writes_them() -> None:
    assert parse_duration("1h30m", "x") == 5400
    assert parse_duration("90s", "x") == 90
    assert parse_size("10GB", "x") == 10 << 30
    assert parse_size("512k", "x") == 512 << 10
    with pytest.raises(UsageError, match="--filter 'type=regular': only until=DURATION"):
        parse_policy(["type=regular"])
    with pytest.raises(UsageError, match="expected a duration"):
        parse_policy(["until=yesterday"])
    with pytest.raises(UsageError, match="--max-used-space 'lots'"):
        parse_policy([], max_used="lots")
