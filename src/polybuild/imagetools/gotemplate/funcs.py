"""The functions a template may call: Go text/template's builtins (index, slice, len, not,
print, printf, println, eq ne lt le gt ge, html, js, urlquery) and buildx's `json`.
`and`/`or` are evaluated lazily by the executor; they are listed here for the parser."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from polybuild.imagetools.gotemplate.printf import sprintf
from polybuild.imagetools.gotemplate.values import (
    NO_VALUE,
    GoMap,
    Nil,
    Struct,
    go_print,
    marshal_indent,
    type_name,
)


class CallError(Exception):
    """A function refused its arguments; the executor adds `error calling NAME:`."""


@dataclass(frozen=True, slots=True)
class Function:
    call: Callable[..., Any]
    at_least: int
    at_most: int | None  # None: variadic


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, "no value" and empty strings, slices and maps are
    false; every struct is true."""
    if value is None or value is NO_VALUE or isinstance(value, Nil):
        return False
    if isinstance(value, bool | int | float):
        return bool(value)
    if isinstance(value, str | bytes | Mapping | list | tuple):
        return len(value) > 0
    return True


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is None or item is NO_VALUE:
            raise CallError("index of untyped nil")
        if isinstance(item, Mapping):
            if not isinstance(key, str):
                raise CallError(f"value has type {type_name(key)}; should be string")
            zero = item.zero if isinstance(item, GoMap) else None
            item = item.get(key, zero)
        elif isinstance(item, list | tuple | str | bytes | Nil):
            if not isinstance(key, int) or isinstance(key, bool):
                raise CallError(f"cannot index slice/array with type {type_name(key)}")
            size = len(item)
            if not 0 <= key < size:
                raise CallError(f"index out of range: {key}")
            assert not isinstance(item, Nil)
            item = item.encode()[key] if isinstance(item, str) else item[key]
        else:
            raise CallError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, str | list | tuple):
        raise CallError(f"can't slice item of type {type_name(item)}")
    if len(bounds) > (2 if isinstance(item, str) else 3):
        raise CallError(f"too many slice indexes: {len(bounds)}")
    numbers = [int(b) for b in bounds]
    start, end = (numbers + [0, len(item)][len(numbers) :])[:2]
    if not 0 <= start <= end <= len(item):
        raise CallError(f"index out of range: {end if end > len(item) else start}")
    return item[start:end]


def _len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, bytes | Mapping | list | tuple | Nil):
        return len(item)
    if item is None or item is NO_VALUE:
        raise CallError("len of nil pointer")
    raise CallError(f"len of type {type_name(item)}")


def _sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for n, arg in enumerate(args):
        if n and not isinstance(arg, str) and not isinstance(args[n - 1], str):
            out.append(" ")
        out.append(go_print(arg))
    return "".join(out)


def _sprintln(*args: Any) -> str:
    return " ".join(go_print(a) for a in args) + "\n"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return ""


def _eq(first: Any, *others: Any) -> bool:
    kind = _kind(first)
    for other in others:
        other_kind = _kind(other)
        if not kind or not other_kind:
            if isinstance(first, Struct) and isinstance(other, Struct):
                if first == other:
                    return True
                continue
            if first is None and other is None:
                return True
            problem = "incompatible types" if kind else "invalid type"
            raise CallError(f"{problem} for comparison")
        if kind != other_kind:
            raise CallError("incompatible types for comparison")
        if first == other:
            return True
    return False


def _less(first: Any, second: Any) -> bool:
    kind, other = _kind(first), _kind(second)
    if kind in ("", "bool") or other in ("", "bool"):
        raise CallError("invalid type for comparison")
    if kind != other:
        raise CallError("incompatible types for comparison")
    return bool(first < second)


def _printf(format_: Any, *args: Any) -> str:
    if not isinstance(format_, str):
        raise CallError(f"wrong type for value; expected string; got {type_name(format_)}")
    return sprintf(format_, args)


def _js(*args: Any) -> str:
    text = _sprint(*args)
    out = []
    for char in text:
        if char in "\\'\"<>&=":
            out.append({"\\": "\\\\", "'": "\\'", '"': '\\"'}.get(char, f"\\u{ord(char):04X}"))
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def _html(*args: Any) -> str:
    return html.escape(_sprint(*args)).replace("&#x27;", "&#39;").replace("&quot;", "&#34;")


FUNCTIONS: Mapping[str, Function] = {
    "and": Function(lambda *a: a[-1], 1, None),
    "or": Function(lambda *a: a[-1], 1, None),
    "not": Function(lambda v: not truth(v), 1, 1),
    "index": Function(_index, 1, None),
    "slice": Function(_slice, 1, None),
    "len": Function(_len, 1, 1),
    "print": Function(_sprint, 0, None),
    "printf": Function(_printf, 1, None),
    "println": Function(_sprintln, 0, None),
    "eq": Function(_eq, 1, None),
    "ne": Function(lambda a, b: not _eq(a, b), 2, 2),
    "lt": Function(_less, 2, 2),
    "le": Function(lambda a, b: _less(a, b) or _eq(a, b), 2, 2),
    "gt": Function(lambda a, b: not (_less(a, b) or _eq(a, b)), 2, 2),
    "ge": Function(lambda a, b: not _less(a, b), 2, 2),
    "html": Function(_html, 0, None),
    "js": Function(_js, 0, None),
    "urlquery": Function(lambda *a: urllib.parse.quote_plus(_sprint(*a)), 0, None),
    # buildx's own: json.MarshalIndent(v, "", "  ")
    "json": Function(marshal_indent, 1, 1),
}
