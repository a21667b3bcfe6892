"""Go's fmt.Sprintf for templates' `printf`: the verbs %v %+v %s %q %d %x %X %o %b %c %U %t
%e %f %g with flags, width and precision, and Go's %!verb(type=value) for what does not fit."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from polybuild.imagetools.gotemplate.values import (
    NO_VALUE,
    Nil,
    Struct,
    format_float,
    go_print,
    type_name,
)

_SPEC = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d*|\*))?(.)?", re.DOTALL)
_QUOTE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """strconv.Quote: a double-quoted Go string literal, printable characters kept."""
    out = ['"']
    for char in text:
        if char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def _bad(verb: str, value: Any) -> str:
    if value is None or value is NO_VALUE:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(value)}={go_print(value)})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(value: int, verb: str, flags: str, precision: int | None) -> str:
    base = {"d": 10, "x": 16, "X": 16, "o": 8, "O": 8, "b": 2}[verb]
    digits = format(abs(value), {10: "d", 16: "x", 8: "o", 2: "b"}[base])
    if verb == "X":
        digits = digits.upper()
    if precision is not None:
        digits = digits.rjust(precision, "0") if precision or value else ""
    prefix = ""
    if "#" in flags or verb == "O":
        prefix = {16: "0x" if verb == "x" else "0X", 8: "0o" if verb == "O" else "0", 2: "0b"}.get(
            base, ""
        )
        if base == 8 and verb == "o" and digits.startswith("0"):
            prefix = ""
    sign = "-" if value < 0 else "+" if "+" in flags else " " if " " in flags else ""
    return sign + prefix + digits


def _float(value: float, verb: str, flags: str, precision: int | None) -> str:
    lower = verb.lower()
    if lower == "v" or (lower == "g" and precision is None):
        text = format_float(value)
    else:
        places = 6 if precision is None else precision
        text = format(value, f".{places}{lower}")
        if lower in ("e", "g"):
            text = re.sub(r"e([+-])(\d)$", r"e\g<1>0\2", text)
    if verb in "EG":
        text = text.upper()
    if "+" in flags and not text.startswith("-"):
        text = "+" + text
    elif " " in flags and not text.startswith("-"):
        text = " " + text
    return text


def _format_one(verb: str, flags: str, precision: int | None, value: Any) -> str | None:
    """One value under one verb, before padding; None when the verb does not fit it."""
    if verb == "v":
        if isinstance(value, float):
            return _float(value, "v", flags, precision)
        return go_print(value, plus="+" in flags)
    if verb in "sq":
        if isinstance(value, str | bytes):
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            if precision is not None:
                text = text[:precision]
            return go_quote(text) if verb == "q" else text
        if verb == "q" and _is_int(value):
            return "'" + go_quote(chr(value))[1:-1].replace('\\"', '"') + "'"
        if verb == "s" and isinstance(value, Struct | Mapping | Sequence | Nil):
            return go_print(value)
        return None
    if verb == "t":
        return ("true" if value else "false") if isinstance(value, bool) else None
    if verb in "dxXoObcU":
        if _is_int(value):
            if verb == "c":
                return chr(value)
            if verb == "U":
                return f"U+{value:04X}"
            return _integer(value, verb, flags, precision)
        if verb in "xX" and isinstance(value, str | bytes):
            raw = value.encode() if isinstance(value, str) else value
            text = raw.hex()
            return text.upper() if verb == "X" else text
        if verb == "d" and isinstance(value, list | tuple) and all(map(_is_int, value)):
            return "[" + " ".join(str(v) for v in value) + "]"
        return None
    if verb in "eEfFgG":
        if isinstance(value, float):
            return _float(value, verb, flags, precision)
        return None
    return None


def _pad(text: str, flags: str, width: int | None, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+- " else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def sprintf(format_: str, args: Sequence[Any]) -> str:
    """fmt.Sprintf(format_, args...) with Go's wording for missing, extra and misfit args."""
    out: list[str] = []
    position = 0
    used = 0
    while True:
        start = format_.find("%", position)
        if start < 0:
            out.append(format_[position:])
            break
        out.append(format_[position:start])
        match = _SPEC.match(format_, start)
        assert match is not None
        flags, width_text, precision_text, verb = match.groups()
        position = match.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        precision: int | None = None
        if width_text == "*":
            width = int(args[used]) if used < len(args) and _is_int(args[used]) else None
            used += 1
        elif width_text:
            width = int(width_text)
        if precision_text == "*":
            precision = int(args[used]) if used < len(args) and _is_int(args[used]) else None
            used += 1
        elif precision_text is not None:
            precision = int(precision_text or "0")
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[used]
        used += 1
        text = _format_one(verb, flags, precision, value)
        if text is None:
            out.append(_bad(verb, value))
            continue
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        out.append(_pad(text, flags, width, numeric))
    if used < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{type_name(a)}={go_print(a)}" for a in args[used:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
