"""`--cache-to` / `--cache-from` values, parsed as buildx parses them.

A value is comma-separated `key=value` fields with a `type` (`type=registry,ref=R,mode=max`);
a value that is one bare field is a registry reference (`--cache-from user/app:cache` means
`type=registry,ref=user/app:cache`). Types and their required fields are checked here, once,
at the edge; what each type does is for whoever runs the build (a BuildKit daemon node gets
them as they are).
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from polybuild.errors import UsageError


class CacheType(enum.StrEnum):
    """The cache backends buildx knows."""

    REGISTRY = "registry"
    LOCAL = "local"
    INLINE = "inline"
    GHA = "gha"
    S3 = "s3"
    AZBLOB = "azblob"


class Direction(enum.StrEnum):
    EXPORT = "--cache-to"
    IMPORT = "--cache-from"


# The field each direction of each type cannot do without (BuildKit's client checks these).
_REQUIRED: Mapping[tuple[Direction, CacheType], str] = {
    (Direction.EXPORT, CacheType.REGISTRY): "ref",
    (Direction.IMPORT, CacheType.REGISTRY): "ref",
    (Direction.EXPORT, CacheType.LOCAL): "dest",
    (Direction.IMPORT, CacheType.LOCAL): "src",
}
_MODES = ("min", "max")


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """One `--cache-to` or `--cache-from` value: its type and its other fields, in order."""

    type: CacheType
    attrs: tuple[tuple[str, str], ...] = ()

    def get(self, key: str, default: str = "") -> str:
        return dict(self.attrs).get(key, default)

    def __str__(self) -> str:
        return ",".join([f"type={self.type}", *(f"{k}={v}" for k, v in self.attrs)])


def _fields(value: str, flag: Direction) -> list[str]:
    try:
        rows = list(csv.reader([value]))
    except csv.Error as exc:
        raise UsageError(f"{flag} {value!r}: {exc}") from None
    return [field.strip() for field in (rows[0] if rows else []) if field.strip()]


def parse_cache(value: str, flag: Direction) -> CacheSpec:
    """One value of `flag`; UsageError naming the flag and the value when it is wrong."""
    fields = _fields(value, flag)
    if not fields:
        raise UsageError(f"{flag}: empty value")
    if len(fields) == 1 and "=" not in fields[0]:
        return CacheSpec(CacheType.REGISTRY, (("ref", fields[0]),))
    kind = ""
    attrs: list[tuple[str, str]] = []
    for field in fields:
        key, sep, item = field.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise UsageError(f"{flag} {value!r}: {field!r} is not key=value")
        if key == "type":
            kind = item.strip()
        elif any(k == key for k, _ in attrs):
            raise UsageError(f"{flag} {value!r}: {key} is given twice")
        else:
            attrs.append((key, item))
    if not kind:
        raise UsageError(f"{flag} {value!r}: type is required", hint="e.g. type=registry,ref=R")
    try:
        cache_type = CacheType(kind)
    except ValueError:
        known = ", ".join(t.value for t in CacheType)
        raise UsageError(
            f"{flag} {value!r}: unknown cache type {kind!r}", hint=f"use {known}"
        ) from None
    spec = CacheSpec(cache_type, tuple(attrs))
    required = _REQUIRED.get((flag, cache_type))
    if required and not spec.get(required):
        raise UsageError(f"{flag} {value!r}: type={cache_type} needs {required}=")
    mode = spec.get("mode")
    if mode and mode not in _MODES:
        raise UsageError(f"{flag} {value!r}: mode must be min or max, not {mode!r}")
    return spec


def parse_caches(values: Iterable[str], flag: Direction) -> tuple[CacheSpec, ...]:
    """Every value of a repeated flag (empty values are skipped, as buildx does)."""
    return tuple(parse_cache(v, flag) for v in values if v.strip())


__all__ = ["CacheSpec", "CacheType", "Direction", "parse_cache", "parse_caches"]
