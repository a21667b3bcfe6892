"""A small subset of Go's text/template for `imagetools inspect --format`: field paths on
`.`, string literals, parentheses, and the functions json, index and len."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from polybuild.errors import UsageError

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_TOKEN = re.compile(
    r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|(\.[A-Za-z0-9_.]*)|([A-Za-z_]\w*)|(-?\d+))'
)


def _json(value: Any) -> str:
    # buildx's `json` is json.MarshalIndent with two spaces.
    return json.dumps(value, indent=2, ensure_ascii=False)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise UsageError(f"template: index of {key!r}: no such entry") from None
    return value


FUNCTIONS: Mapping[str, Callable[..., Any]] = {"json": _json, "index": _index, "len": len}


def _field(value: Any, name: str) -> Any:
    """`.Name` on a mapping: the exact key, else Go's exported name for a JSON key."""
    if isinstance(value, Mapping):
        for key in (name, name[:1].lower() + name[1:]):
            if key in value:
                return value[key]
    raise UsageError(f"template: can't evaluate field {name}")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise UsageError(f"template: unexpected {text[position:]!r}")
        kinds = ("(", ")", "string", "field", "ident", "number")
        for kind, value in zip(kinds, match.groups(), strict=True):
            if value is not None:
                tokens.append((kind, value))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], data: Any) -> None:
        self.tokens = tokens
        self.position = 0
        self.data = data

    def command(self) -> Any:
        kind, value = self.tokens[self.position]
        if kind == "ident":
            self.position += 1
            function = FUNCTIONS.get(value)
            if function is None:
                raise UsageError(f'template: function "{value}" not defined')
            args = []
            while self.position < len(self.tokens) and self.tokens[self.position][0] != ")":
                args.append(self.term())
            return function(*args)
        return self.term()

    def term(self) -> Any:
        kind, value = self.tokens[self.position]
        self.position += 1
        if kind == "(":
            result = self.command()
            if self.position >= len(self.tokens) or self.tokens[self.position][0] != ")":
                raise UsageError("template: unclosed parenthesis")
            self.position += 1
            return result
        if kind == "string":
            return json.loads(value)
        if kind == "number":
            return int(value)
        if kind == "field":
            result = self.data
            for name in filter(None, value.split(".")):
                result = _field(result, name)
            return result
        raise UsageError(f"template: unexpected {value!r}")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render(template: str, data: Any) -> str:
    """Evaluate `template` against `data`; values that are strings print as they are."""
    out: list[str] = []
    position = 0
    for match in _ACTION.finditer(template):
        out.append(template[position : match.start()])
        tokens = _tokens(match.group(1))
        if tokens:
            parser = _Parser(tokens, data)
            value = parser.command()
            if parser.position != len(tokens):
                raise UsageError(f"template: unexpected {tokens[parser.position][1]!r}")
            out.append(_text(value))
        position = match.end()
    out.append(template[position:])
    return "".join(out)
