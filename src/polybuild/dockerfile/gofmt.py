"""The few Go formatting verbs BuildKit's history entries are written with: `%q` of a
string slice (`["a" "b"]`), `%v` of one (`[a b]`), and time.Duration's String (`1m30s`)."""

from __future__ import annotations

from collections.abc import Sequence

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\", '"': '\\"'}  # fmt: skip


def go_quote(text: str) -> str:
    """strconv.Quote: printable characters kept, the rest escaped as Go escapes them."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def go_quoted_list(items: Sequence[str]) -> str:
    """fmt's %q of a []string."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def go_list(items: Sequence[str]) -> str:
    """fmt's %v of a []string."""
    return "[" + " ".join(items) + "]"


def go_duration(nanoseconds: int) -> str:
    """time.Duration.String: `0s`, `1.5s`, `1m30s`, `1h0m0s`, `250ms`, `1.5µs`."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    n = abs(nanoseconds)
    if n < 1_000_000_000:
        for size, unit in ((1_000_000, "ms"), (1_000, "µs"), (1, "ns")):
            if n >= size:
                return sign + _fraction(n, size) + unit
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{part:0{digits}d}".rstrip("0")


__all__ = ["go_duration", "go_list", "go_quote", "go_quoted_list"]
