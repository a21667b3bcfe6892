"""`du --filter` / `prune --filter` values as buildx reads them and BuildKit applies them.

buildx parses each `KEY=VALUE` (docker's filter flag: the key lower-cased, both trimmed; a
key ending in `!` or `~` makes `!=` and `~=`), takes `until` (or its old name `unused-for`)
as a duration, and sends the rest to BuildKit as one filter of comma-joined selectors:
`KEY==VALUE`, `id~=VALUE` for `id`, `KEY!=VALUE`, `KEY~=REGEXP`. BuildKit matches them
against a record's fields (containerd's filter syntax): `id`, `parents` (`;`-joined),
`description`, `type`, and the presence-only `inuse`, `mutable`, `immutable`, `shared`,
`private`. `record_matches` applies them to polybuild's own records the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from polybuild.buildkit.records import CacheRecord
from polybuild.errors import UsageError
from polybuild.units import parse_duration

BAD_FORMAT = "bad format of filter (expected name=value)"
_SELECTOR = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:(==|!=|~=|=)(.*))?$")


@dataclass(frozen=True, slots=True)
class CacheFilters:
    """`until` in seconds (None: not given) and BuildKit's filter strings (empty: all)."""

    until: float | None = None
    selectors: tuple[str, ...] = ()


def split_filter(value: str) -> tuple[str, str]:
    """docker's filters.ParseFlag for one value: (key, value); ValueError(BAD_FORMAT)."""
    if "=" not in value:
        raise ValueError(BAD_FORMAT)
    key, _, given = value.partition("=")
    return key.strip().lower(), given.strip()


def parse_filters(values: Sequence[str]) -> CacheFilters:
    """buildx's toBuildkitPruneInfo; UsageError with its words."""
    given: dict[str, list[str]] = {}
    for value in values:
        try:
            key, item = split_filter(value)
        except ValueError:
            raise UsageError(
                f'invalid argument "{value}" for "--filter" flag: {BAD_FORMAT}'
            ) from None
        if item not in given.setdefault(key, []):
            given[key].append(item)
    if given.get("until") and given.get("unused-for"):
        raise UsageError('conflicting filters "until" and "unused-for"')
    until_key = "unused-for" if given.get("unused-for") else "until"
    until = None
    for key in sorted(given):
        if len(given[key]) > 1:
            raise UsageError(f'"{key}" filter expects only one value')
    if given.get(until_key):
        text = given[until_key][0]
        try:
            until = parse_duration(text, "--filter")
        except UsageError:
            raise UsageError(
                f"\"{until_key}\" filter expects a duration (e.g., '24h'): "
                f'time: invalid duration "{text}"'
            ) from None
    selectors = []
    for key in sorted(given):
        if key == until_key:
            continue
        (value,) = given[key]
        if key == "id":
            selectors.append(f"id~={value}")
        elif key.endswith(("!", "~")):
            selectors.append(f"{key}={value}")
        else:
            selectors.append(f"{key}=={value}")
    return CacheFilters(until, (",".join(selectors),) if selectors else ())


def _field(record: CacheRecord, name: str) -> tuple[str, bool]:
    """BuildKit's adaptUsageInfo: a field's value and whether the record has it."""
    fields: dict[str, tuple[str, bool]] = {
        "id": (record.id, bool(record.id)),
        "parents": (";".join(record.parents), bool(record.parents)),
        "description": (record.description, bool(record.description)),
        "inuse": ("", record.in_use),
        "mutable": ("", record.mutable),
        "immutable": ("", not record.mutable),
        "type": (record.record_type, bool(record.record_type)),
        "shared": ("", record.shared),
        "private": ("", not record.shared),
    }
    return fields.get(name, ("", False))


def _selector_matches(record: CacheRecord, selector: str) -> bool:
    match = _SELECTOR.match(selector)
    if match is None:
        raise UsageError(f"failed to parse diskusage filters [{selector}]")
    name, operator, expected = match.group(1), match.group(2), (match.group(3) or "").strip()
    if len(expected) >= 2 and expected[0] == expected[-1] == '"':
        expected = expected[1:-1].replace('\\"', '"')
    elif any(char.isspace() for char in expected):  # containerd's syntax: quote such values
        raise UsageError(
            f"failed to parse diskusage filters [{selector}]: a value with spaces must be quoted"
        )
    value, present = _field(record, name.split(".", 1)[0])
    if operator is None:
        return present
    if operator in ("==", "="):
        return present and value == expected
    if operator == "!=":
        return value != expected
    try:
        return re.search(expected, value) is not None
    except re.error as exc:
        raise UsageError(f"failed to parse diskusage filters [{selector}]: {exc}") from None


def record_matches(record: CacheRecord, filters: Sequence[str]) -> bool:
    """Whether any of the filters (each: selectors that must all match) takes the record."""
    if not filters:
        return True
    return any(
        all(_selector_matches(record, s) for s in f.split(",") if s.strip()) for f in filters
    )


__all__ = ["BAD_FORMAT", "CacheFilters", "parse_filters", "record_matches", "split_filter"]
