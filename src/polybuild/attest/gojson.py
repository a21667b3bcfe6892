"""JSON bytes as Go's encoding/json writes them: compact (or MarshalIndent's two spaces),
keys in the order given (callers build dicts in Go's struct order, maps sorted), `<`, `>`,
`&`, U+2028 and U+2029 escaped, other text as UTF-8; RFC 3339 times with nanoseconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _escape(text: str) -> str:
    for raw, escaped in _ESCAPES.items():
        if raw in text:
            text = text.replace(raw, escaped)
    return text


def marshal(value: Any) -> bytes:
    """json.Marshal: compact."""
    return _escape(json.dumps(value, ensure_ascii=False, separators=(",", ":"))).encode()


def marshal_indent(value: Any, *, sort_keys: bool = False) -> bytes:
    """json.MarshalIndent(v, "", "  "); `sort_keys` for values Go holds as maps."""
    return _escape(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=sort_keys)).encode()


def loads(raw: bytes) -> Any:
    """Parse JSON keeping its keys' order (Python's dicts keep insertion order)."""
    return json.loads(raw)


def compact(raw: bytes) -> bytes:
    """What json.Marshal makes of a json.RawMessage: the same value, compact."""
    return marshal(json.loads(raw))


def rfc3339_nano(moment: datetime, nanoseconds: int | None = None) -> str:
    """Go's time.RFC3339Nano of a UTC time (trailing zeros of the fraction dropped);
    `nanoseconds` (0-999999999) replaces the datetime's microseconds when given."""
    utc = moment.astimezone(UTC)
    fraction = nanoseconds if nanoseconds is not None else utc.microsecond * 1000
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"
