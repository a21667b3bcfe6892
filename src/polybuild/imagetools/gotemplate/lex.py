"""Go text/template's lexer: text and `{{ }}` actions (with `{{-`/`-}}` trimming and
`{{/* */}}` comments) into tokens that carry their byte offset and whether space preceded them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from polybuild.errors import TemplateError

KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)
_SPACE = " \t\r\n"
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?\d+)?|0[bB][01_]+|0[oO][0-7_]+"
    r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)"
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    value: Any
    pos: int
    spaced: bool = False  # whitespace came right before it (operands are separated by it)
    source: str = ""


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def parse_error(name: str, text: str, pos: int, message: str) -> TemplateError:
    return TemplateError(f"template: {name}:{line_of(text, pos)}: {message}")


def unquote(body: str, quote: str, error: Any) -> str:
    """A Go interpreted string or character literal's body (without its quotes), unescaped."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        code = body[i + 1 : i + 2]
        if code in _ESCAPES and (code != "'" or quote == "'") and (code != '"' or quote == '"'):
            out.append(_ESCAPES[code])
            i += 2
            continue
        sizes = {"x": 2, "u": 4, "U": 8}
        if code in sizes:
            digits = body[i + 2 : i + 2 + sizes[code]]
            if len(digits) != sizes[code] or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise error("invalid syntax")
            out.append(chr(int(digits, 16)))
            i += 2 + sizes[code]
            continue
        if re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
            continue
        raise error("invalid syntax")
    return "".join(out)


def number(text: str) -> int | float:
    """A number constant as Go's template gives it to a function: an int unless it is written
    with a point or an exponent (then a float64)."""
    clean = text.replace("_", "")
    is_hex = clean.lstrip("+-")[:2].lower() == "0x"
    if is_hex and any(c in clean for c in ".pP"):
        return float.fromhex(clean)
    if not is_hex and any(c in clean for c in ".eE"):
        return float(clean)
    return int(clean, 0) if not re.fullmatch(r"[+-]?0\d+", clean) else int(clean, 8)


class Lexer:
    """Turns one template into tokens; errors name the template and the line, as Go's."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.tokens: list[Token] = []
        self.pos = 0

    def error(self, pos: int, message: str) -> TemplateError:
        return parse_error(self.name, self.text, pos, message)

    def run(self) -> list[Token]:
        text = self.text
        trim_next = False
        while True:
            start = text.find("{{", self.pos)
            end = len(text) if start < 0 else start
            chunk = text[self.pos : end]
            left_trim = (
                start >= 0
                and text[start + 2 : start + 3] == "-"
                and (text[start + 3 : start + 4] in tuple(_SPACE))
            )
            if trim_next:
                chunk = chunk.lstrip(_SPACE)
            if left_trim:
                chunk = chunk.rstrip(_SPACE)
            if chunk:
                self.tokens.append(Token("text", chunk, self.pos))
            if start < 0:
                self.tokens.append(Token("eof", None, len(text)))
                return self.tokens
            self.pos = start + (4 if left_trim else 2)
            trim_next = self._action(start)

    def _at_right(self) -> tuple[bool, bool]:
        """(at the closing delimiter, with a trim marker)."""
        rest = self.text[self.pos : self.pos + 4]
        if rest.startswith("}}"):
            return True, False
        if len(rest) == 4 and rest[0] in _SPACE and rest[1:] == "-}}":
            return True, True
        return False, False

    def _action(self, start: int) -> bool:
        text = self.text
        if text.startswith("/*", self.pos):
            close = text.find("*/", self.pos + 2)
            if close < 0:
                raise self.error(start, "unclosed comment")
            self.pos = close + 2
            at, trim = self._at_right()
            if not at:
                raise self.error(start, "comment ends before closing delimiter")
            self.pos += 4 if trim else 2
            return trim
        self.tokens.append(Token("left", "{{", start))
        depth = 0
        spaced = False
        while True:
            at, trim = self._at_right()
            if at:
                if depth:
                    raise self.error(self.pos, "unclosed left paren")
                self.tokens.append(Token("right", "}}", self.pos, spaced))
                self.pos += 4 if trim else 2
                return trim
            if self.pos >= len(text):
                raise self.error(start, "unclosed action")
            char = text[self.pos]
            if char in _SPACE:
                spaced = True
                self.pos += 1
                continue
            token = self._token(char, spaced)
            if token.kind == "(":
                depth += 1
            elif token.kind == ")":
                depth -= 1
                if depth < 0:
                    raise self.error(token.pos, "unexpected right paren")
            self.tokens.append(token)
            spaced = False

    def _token(self, char: str, spaced: bool) -> Token:
        text, pos = self.text, self.pos
        simple = {":=": "declare", "|": "pipe", "(": "(", ")": ")", ",": "comma", "=": "assign"}
        for symbol, kind in simple.items():
            if text.startswith(symbol, pos):
                self.pos += len(symbol)
                return Token(kind, symbol, pos, spaced, symbol)
        if char in "\"'`":
            return self._quoted(char, spaced)
        if char == "$":
            word = _WORD.match(text, pos + 1)
            end = word.end() if word else pos + 1
            self.pos = end
            return Token("variable", text[pos:end], pos, spaced, text[pos:end])
        if char == "." and not text[pos + 1 : pos + 2].isdigit():
            word = _WORD.match(text, pos + 1)
            if word is None:
                self.pos += 1
                return Token("dot", ".", pos, spaced, ".")
            self.pos = word.end()
            return Token("field", word.group(), pos, spaced, text[pos : word.end()])
        found = _NUMBER.match(text, pos)
        if found and (char.isdigit() or char in "+-."):
            end = found.end()
            if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                raise self.error(pos, f"bad number syntax: {text[pos : end + 1]!r}")
            self.pos = end
            return Token("number", number(found.group()), pos, spaced, found.group())
        word = _WORD.match(text, pos)
        if word is not None:
            self.pos = word.end()
            value = word.group()
            if value in ("true", "false"):
                return Token("bool", value == "true", pos, spaced, value)
            kind = "nil" if value == "nil" else "keyword" if value in KEYWORDS else "ident"
            return Token(kind, value, pos, spaced, value)
        raise self.error(pos, f"bad character U+{ord(char):04X} '{char}'")

    def _quoted(self, quote: str, spaced: bool) -> Token:
        text, start = self.text, self.pos
        i = start + 1
        while True:
            if i >= len(text) or (quote != "`" and text[i] == "\n"):
                kind = "raw quoted string" if quote == "`" else "quoted string"
                if quote == "'":
                    raise self.error(start, "unterminated character constant")
                raise self.error(start, f"unterminated {kind}")
            if quote != "`" and text[i] == "\\":
                i += 2
                continue
            if text[i] == quote:
                break
            i += 1
        self.pos = i + 1
        body, source = text[start + 1 : i], text[start : i + 1]
        if quote == "`":
            return Token("string", body, start, spaced, source)

        def error(message: str) -> TemplateError:
            return self.error(start, f"{message}: {source}")

        value = unquote(body, quote, error)
        if quote == "'":
            if len(value) != 1:
                raise self.error(start, f"malformed character constant: {source}")
            return Token("number", ord(value), start, spaced, source)
        return Token("string", value, start, spaced, source)
