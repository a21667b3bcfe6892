"""Go's text/template as buildx's `imagetools inspect --format` uses it: parse once, execute
against Go-shaped values (see values), with buildx's extra `json` function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from polybuild.imagetools.gotemplate.execute import Executor
from polybuild.imagetools.gotemplate.funcs import FUNCTIONS, CallError, Function
from polybuild.imagetools.gotemplate.parse import Tree, parse
from polybuild.imagetools.gotemplate.values import (
    NO_VALUE,
    Field,
    GoMap,
    Nil,
    Struct,
    Time,
    from_json,
    go_print,
    marshal_indent,
)

__all__ = [
    "FUNCTIONS",
    "NO_VALUE",
    "CallError",
    "Executor",
    "Field",
    "Function",
    "GoMap",
    "Nil",
    "Struct",
    "Time",
    "Tree",
    "compile_template",
    "from_json",
    "go_print",
    "marshal_indent",
    "render",
]


def compile_template(
    text: str, name: str = "", functions: Mapping[str, Function] = FUNCTIONS
) -> Tree:
    """Parse a template (buildx's are unnamed: errors read `template: :1: ...`)."""
    return parse(name, text, functions)


def render(template: str | Tree, data: Any, functions: Mapping[str, Function] = FUNCTIONS) -> str:
    """Execute a template (text or parsed) against `data` with `functions` (buildx's by
    default); raises TemplateError."""
    if isinstance(template, str):
        template = compile_template(template, functions=functions)
    return Executor(template, data, functions).execute()
