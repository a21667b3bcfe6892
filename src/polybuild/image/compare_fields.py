"""The first field in which two decoded JSON documents (manifests, configs) differ, by its JSON
path (`config.Env[2]`, `history[3].created`, `rootfs.diff_ids[1]`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["ABSENT", "FieldDifference", "first_field_difference", "show_value"]

ABSENT = "absent"
# Below this depth values are compared whole: a hostile document nested thousands deep
# (inside a free-form field such as ExposedPorts) must not exhaust the stack here.
_MAX_DEPTH = 16
_MAX_SHOWN = 120
_MISSING: Any = object()  # a key or item one side lacks


@dataclass(frozen=True, slots=True)
class FieldDifference:
    """One field that differs: its JSON path and both values as short JSON text (or
    `absent`)."""

    field: str
    first: str
    second: str


def show_value(value: object) -> str:
    """`value` as compact JSON, shortened to about a line."""
    if isinstance(value, msgspec.Struct | list | dict | str | int | float | bool | None):
        text = msgspec.json.encode(value).decode("utf-8", "replace")
    else:
        text = repr(value)
    if len(text) > _MAX_SHOWN:
        return f"{text[: _MAX_SHOWN - 3]}..."
    return text


def _key_path(path: str, key: str) -> str:
    if key.replace("_", "").isalnum() and not key[:1].isdigit():
        return f"{path}.{key}" if path else key
    return f"{path}[{show_value(key)}]"


def _differs(path: str, first: object, second: object) -> FieldDifference:
    return FieldDifference(
        path or "(document)",
        ABSENT if first is _MISSING else show_value(first),
        ABSENT if second is _MISSING else show_value(second),
    )


def _struct_items(value: msgspec.Struct) -> list[tuple[str, object]]:
    fields = msgspec.structs.fields(value)
    return [(field.encode_name, getattr(value, field.name)) for field in fields]


def _walk(first: object, second: object, path: str, depth: int) -> FieldDifference | None:
    if first is _MISSING or second is _MISSING or depth >= _MAX_DEPTH:
        return None if first == second else _differs(path, first, second)
    if (
        isinstance(first, msgspec.Struct)
        and isinstance(second, msgspec.Struct)
        and type(first) is type(second)
    ):
        for (name, a), (_, b) in zip(_struct_items(first), _struct_items(second), strict=True):
            found = _walk(a, b, _key_path(path, name), depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        for key in sorted({*first, *second}, key=str):
            found = _walk(
                first.get(key, _MISSING),
                second.get(key, _MISSING),
                _key_path(path, str(key)),
                depth + 1,
            )
            if found is not None:
                return found
        return None
    if isinstance(first, list | tuple) and isinstance(second, list | tuple):
        return _walk_sequence(first, second, path, depth)
    return None if first == second else _differs(path, first, second)


def _walk_sequence(
    first: Sequence[object], second: Sequence[object], path: str, depth: int
) -> FieldDifference | None:
    for n in range(max(len(first), len(second))):
        a = first[n] if n < len(first) else _MISSING
        b = second[n] if n < len(second) else _MISSING
        found = _walk(a, b, f"{path}[{n}]", depth + 1)
        if found is not None:
            return found
    return None


def first_field_difference(first: object, second: object) -> FieldDifference | None:
    """The first field, in document order, whose values differ; None when all are equal.

    Structs are walked field by field (named as they are in JSON), mappings by sorted key,
    lists item by item; an item or key only one side has is `absent` on the other.
    """
    return _walk(first, second, "", 0)
