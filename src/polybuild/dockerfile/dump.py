"""Print a parsed Dockerfile the way BuildKit's `Node.Dump` does (its golden-test format)."""

from __future__ import annotations

import unicodedata

from polybuild.dockerfile.syntax import Node, ParseResult

_ESCAPES = {
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


def _go_printable(ch: str) -> bool:
    # Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def go_quote(text: str) -> str:
    """Go's strconv.Quote: a double-quoted string with Go escapes."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # an invalid UTF-8 byte kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif _go_printable(ch):
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def dump_node(node: Node) -> str:
    """One instruction as `keyword ["--flag"] "arg" ...`, ONBUILD nesting its child."""
    text = node.command.lower()
    if node.flags:
        text += " [" + " ".join(go_quote(flag) for flag in node.flags) + "]"
    for arg in node.args:
        text += " " + go_quote(arg)
    if node.child is not None:
        text += " (" + dump_node(node.child) + ")"
    return text.strip()


def dump(result: ParseResult) -> str:
    """The whole tree, one `(instruction ...)` per line, ending with a newline."""
    return "".join(f"({dump_node(node)})\n" for node in result.nodes)
