"""Go's text/template as buildx's `imagetools inspect --format` uses it: parse once, execute
against Go-shaped values (see values), with buildx's extra `json` function."""

from __future__ import annotations

from typing import Any

from polybuild.imagetools.gotemplate.execute import Executor
from polybuild.imagetools.gotemplate.funcs import FUNCTIONS
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
    "NO_VALUE",
    "Field",
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


def compile_template(text: str, name: str = "") -> Tree:
    """Parse a template (buildx's are unnamed: errors read `template: :1: ...`)."""
    return parse(name, text, FUNCTIONS)


def render(template: str | Tree, data: Any) -> str:
    """Execute a template (text or parsed) against `data`; raises TemplateError."""
    tree = compile_template(template) if isinstance(template, str) else template
    return Executor(tree, data).execute()
