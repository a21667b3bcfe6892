"""Platform matchers: which image variants a platform can run, and which it prefers.

The rules are containerd's: `only(p)` accepts p and everything p runs compatibly, most
preferred first (arm64 -> arm/v8, arm/v7, arm/v6, arm/v5; amd64/v3 -> amd64/v2, amd64, 386;
arm/v7 -> arm/v6, arm/v5); `only_strict(p)` accepts p alone; `ordered(*ps)` accepts any of
ps, preferring earlier ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from polybuild.platforms._types import Platform, normalize


class MatchComparer(Protocol):
    """Decides whether a platform is acceptable and which of two acceptable ones is better."""

    def match(self, platform: Platform) -> bool: ...

    def less(self, first: Platform, second: Platform) -> bool: ...


def _variant_number(variant: str) -> int | None:
    if variant.startswith("v") and variant[1:].isdigit():
        return int(variant[1:])
    return None


def compatible_platforms(platform: Platform) -> tuple[Platform, ...]:
    """`platform` followed by every platform it can also run, in order of preference."""
    platform = normalize(platform)
    vector = [platform]
    os_name, arch = platform.os, platform.architecture
    if arch == "amd64":
        level = _variant_number(platform.variant) if platform.variant else 1
        if level is not None and level > 1:
            vector.extend(
                normalize(Platform(os_name, "amd64", f"v{n}")) for n in range(level - 1, 0, -1)
            )
        vector.append(Platform(os_name, "386"))
    elif arch == "arm":
        level = _variant_number(platform.variant)
        if level is not None and level > 5:
            vector.extend(Platform(os_name, "arm", f"v{n}") for n in range(level - 1, 4, -1))
    elif arch == "arm64":
        variant = platform.variant or "v8"
        vector.extend(compatible_platforms(Platform(os_name, "arm", variant)))
    return tuple(vector)


@dataclass(frozen=True, slots=True)
class Ordered:
    """Accepts any of `platforms`; an earlier one is preferred over a later one."""

    platforms: tuple[Platform, ...]

    def match(self, platform: Platform) -> bool:
        return normalize(platform) in self.platforms

    def less(self, first: Platform, second: Platform) -> bool:
        """True when `first` is strictly preferred to `second`."""
        a, b = normalize(first), normalize(second)
        for candidate in self.platforms:
            if a == candidate and b != candidate:
                return True
            if candidate in (a, b):
                return False
        return False

    def rank(self, platform: Platform) -> int | None:
        """Position of `platform` in the preference order (0 is best), None if not matched."""
        normalized = normalize(platform)
        try:
            return self.platforms.index(normalized)
        except ValueError:
            return None

    def best(self, candidates: Iterable[Platform]) -> Platform | None:
        """The most preferred of `candidates`, or None if none matches."""
        ranked = [(r, p) for p in candidates if (r := self.rank(p)) is not None]
        return min(ranked, key=lambda item: item[0])[1] if ranked else None


def ordered(*platforms: Platform) -> Ordered:
    """A matcher accepting any of `platforms`, preferring earlier ones."""
    seen: list[Platform] = []
    for p in platforms:
        n = normalize(p)
        if n not in seen:
            seen.append(n)
    return Ordered(tuple(seen))


def only(platform: Platform) -> Ordered:
    """Lenient: `platform` and every platform it runs compatibly (containerd's fallbacks)."""
    return ordered(*compatible_platforms(platform))


def only_strict(platform: Platform) -> Ordered:
    """Strict: exactly `platform` (after normalisation)."""
    return ordered(platform)


def any_of(platforms: Sequence[Platform]) -> Ordered:
    """Lenient match against several platforms: each one's fallbacks, in the given order."""
    vector: list[Platform] = []
    for p in platforms:
        vector.extend(compatible_platforms(p))
    return ordered(*vector)
