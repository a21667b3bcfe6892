"""Text from a build record made safe for the report's HTML and SVG: escaped for element
content and attribute values, control characters dropped, long strings clipped."""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(value: str) -> str:
    """`value` without control characters (but tab and newline): a NUL or an escape
    sequence from a step's name has no place in a page."""
    return _CONTROL.sub("", value)


def clip(value: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking a cut."""
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + "\u2026"


def size(count: int) -> str:
    """Bytes in decimal units, as BuildKit prints them (`1.14MB`, `999B`)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{count}B" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def text(value: str) -> str:
    """Element content: `<`, `>`, `&` and quotes escaped."""
    return html.escape(clean(value), quote=True)


def attr(value: str) -> str:
    """An attribute value (always written in double quotes)."""
    return html.escape(clean(value), quote=True).replace("\n", "&#10;")


__all__ = ["attr", "clean", "clip", "size", "text"]
