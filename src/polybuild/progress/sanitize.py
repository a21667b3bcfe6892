"""Text from a build (step names, output, Dockerfile lines) made safe for a terminal, and cut
to a number of columns. Step names and output are hostile: an escape sequence could retitle
the terminal, clear it, or write to the clipboard (OSC 52)."""

from __future__ import annotations

import re
import unicodedata

# ESC sequences (CSI, OSC/DCS/APC strings, two-byte), then any other C0/C1 control character
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)|\x1b.?|[\x00-\x1f\x7f-\x9f]"
)


def clean(text: str, *, keep: str = "") -> str:
    """`text` safe to print on a terminal: no escape sequences, no control characters but
    those in `keep` (such as a newline)."""
    if text.isprintable():
        return text
    if keep:
        return keep[0].join(clean(part, keep=keep[1:]) for part in text.split(keep[0]))
    return _ESCAPES.sub("", text)


def cells(text: str) -> int:
    """How many terminal columns `text` takes (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def fit(text: str, width: int) -> str:
    """`text` cut to at most `width` columns."""
    if cells(text) <= width:
        return text
    if text.isascii():
        return text[: max(width, 0)]
    out, used = [], 0
    for char in text:
        used += cells(char)
        if used > width:
            break
        out.append(char)
    return "".join(out)


__all__ = ["cells", "clean", "fit"]
