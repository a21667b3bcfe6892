"""docker's formatter as buildx's `ls`, `du` and `history ls` use it for `--format`: `json`
(each item's JSON on a line), `table TEMPLATE` (a header row from the template run over the
column names, then one aligned row per item) or a bare Go template (one line per item), with
docker's template functions (json, split, join, title, lower, upper, pad, truncate)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from polybuild.errors import TemplateError
from polybuild.imagetools.gotemplate import (
    FUNCTIONS,
    NO_VALUE,
    CallError,
    Executor,
    Function,
    GoMap,
    Struct,
    Tree,
    compile_template,
    go_print,
)
from polybuild.imagetools.gotemplate.values import to_plain, type_name
from polybuild.tabwriter import tabwrite

TABLE = "table"
JSON = "json"
PRETTY = "pretty"
_HINT = "--format takes table, json, or a Go template (`table {{.Name}}` for columns)"


@dataclass(frozen=True, slots=True)
class Format:
    """A `--format` value (docker's formatter.Format)."""

    text: str

    @property
    def is_table(self) -> bool:
        return self.text.startswith(TABLE)

    @property
    def is_json(self) -> bool:
        return self.text == JSON

    def template(self) -> str:
        """The template docker runs: `json` is `{{json .}}`; `table` dropped, spaces trimmed,
        `\\t` and `\\n` typed as escapes made tabs and newlines."""
        if self.text == TABLE:
            return ""
        if self.text == JSON:
            return "{{json .}}"
        text = self.text.removeprefix(TABLE).strip(" ")
        return text.replace("\\t", "\t").replace("\\n", "\n")


@dataclass(frozen=True, slots=True)
class Item(Struct):
    """One item a template sees (buildx's lsContext, diskusageContext): its niladic methods
    (`methods`) and the JSON text its MarshalJSON writes for `{{json .}}` (`marshal`)."""

    marshal: Callable[[], str] | None = None


def item(
    type_name_: str, methods: Mapping[str, Callable[[], Any]], marshal: Callable[[], str]
) -> Item:
    """An item of Go type *`type_name_` (as template errors name it)."""
    return Item(type_name_, (), methods, pointer=True, marshal=marshal)


def go_json(value: Any, *, escape_html: bool = False) -> str:
    """encoding/json's compact output, map keys sorted (json.Marshal escapes <, > and &;
    docker's `json` function's encoder does not)."""
    text = json.dumps(to_plain(value), separators=(",", ":"), ensure_ascii=False)
    if escape_html:
        for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _json(value: Any) -> str:
    if isinstance(value, Item) and value.marshal is not None:
        return value.marshal()
    return go_json(None if value is NO_VALUE else value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        got = "invalid value" if value is NO_VALUE else f"got {type_name(value)}"
        raise CallError(f"wrong type for value; expected string; {got}")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise CallError(f"wrong type for value; expected int; got {type_name(value)}")
    return value


def _split(source: Any, separator: Any) -> list[str]:
    text, sep = _string(source), _string(separator)
    return list(text) if not sep else text.split(sep)


def _join(elements: Any, separator: Any) -> str:
    sep = _string(separator)
    if elements is None or elements is NO_VALUE:
        return ""
    if isinstance(elements, Mapping):
        return sep.join(sorted(go_print(v) for v in elements.values()))
    if isinstance(elements, list | tuple):
        return sep.join(go_print(v) for v in elements)
    raise CallError(f"expected slice, got {type_name(elements)}")


def _is_separator(char: str) -> bool:
    """strings.Title's word boundary: ASCII but letters, digits and _; Unicode spaces."""
    if char.isascii():
        return not (char.isalnum() or char == "_")
    return char.isspace()


def _title(source: Any) -> str:
    out, previous = [], " "
    for char in _string(source):
        out.append(char.upper() if _is_separator(previous) else char)
        previous = char
    return "".join(out)


def _pad(source: Any, prefix: Any, suffix: Any) -> str:
    text = _string(source)
    return text and " " * _int(prefix) + text + " " * _int(suffix)


def _truncate(source: Any, length: Any) -> str:
    text, size = _string(source), _int(length)
    return text if len(text) < size else text[:size]


DOCKER_FUNCTIONS: Mapping[str, Function] = {
    **FUNCTIONS,
    "json": Function(_json, 1, 1),
    "split": Function(_split, 2, 2),
    "join": Function(_join, 2, 2),
    "title": Function(_title, 1, 1),
    "lower": Function(lambda s: _string(s).lower(), 1, 1),
    "upper": Function(lambda s: _string(s).upper(), 1, 1),
    "pad": Function(_pad, 3, 3),
    "truncate": Function(_truncate, 2, 2),
}

# docker's HeaderFunctions: a header shows the column's name, never split, joined or cased
HEADER_FUNCTIONS: Mapping[str, Function] = {
    **DOCKER_FUNCTIONS,
    **{name: Function(lambda s: _string(s), 1, 1) for name in ("json", "title", "lower", "upper")},
    **{name: Function(lambda s, _: _string(s), 2, 2) for name in ("split", "join", "truncate")},
}


def _parse(format_: Format) -> Tree:
    try:
        return compile_template(format_.template(), functions=DOCKER_FUNCTIONS)
    except TemplateError as exc:
        raise TemplateError(f"template parsing error: {exc}", hint=_HINT) from None


def _header(tree: Tree, headers: Mapping[str, str]) -> str:
    """The template over the column names (docker ignores an error here, keeping what was
    written before it); a field with no name prints `<no value>`, as Go's for a map."""
    executor = Executor(tree, GoMap(headers, "formatter.SubHeaderContext", ""), HEADER_FUNCTIONS)
    with contextlib.suppress(TemplateError):
        executor.execute()
    return "".join(executor.out)


def write(format_: Format, items: Sequence[Item], headers: Mapping[str, str]) -> str:
    """What docker's formatter.Context.Write prints: nothing if any item's template fails
    (raising the error as docker words it), a table (minwidth 10, padding 3) under its
    header, or each item's text on its own line."""
    tree = _parse(format_)
    lines = []
    for one in items:
        try:
            lines.append(Executor(tree, one, DOCKER_FUNCTIONS).execute() + "\n")
        except TemplateError as exc:
            raise TemplateError(f"template parsing error: {exc}", hint=_HINT) from None
    if not format_.is_table:
        return "".join(lines)
    return tabwrite(_header(tree, headers) + "\n" + "".join(lines), padding=3, minwidth=10)


__all__ = [
    "DOCKER_FUNCTIONS",
    "HEADER_FUNCTIONS",
    "JSON",
    "PRETTY",
    "TABLE",
    "Format",
    "Item",
    "go_json",
    "item",
    "write",
]
