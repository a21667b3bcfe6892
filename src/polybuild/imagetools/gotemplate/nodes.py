"""The parse tree of a Go text/template: text, actions, pipelines and control structures, each
node with its byte offset in the template (for Go's `template: NAME:LINE:COL:` errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Text:
    pos: int
    text: str


@dataclass(frozen=True, slots=True)
class Field:
    """`.A.B`: fields looked up on dot."""

    pos: int
    names: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Variable:
    """`$x.A.B` (names[0] is the variable, with its `$`)."""

    pos: int
    names: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Chain:
    """`(pipeline).A.B` or `$x`-less operands followed by fields."""

    pos: int
    node: Any
    names: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Identifier:
    """A function name."""

    pos: int
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class Dot:
    pos: int
    source: str = "."


@dataclass(frozen=True, slots=True)
class Nil:
    pos: int
    source: str = "nil"


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, character or bool constant, already converted to its value."""

    pos: int
    value: Any
    source: str


@dataclass(frozen=True, slots=True)
class Command:
    pos: int
    args: tuple[Any, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Pipeline:
    pos: int
    declarations: tuple[str, ...]  # variable names, with $
    is_assign: bool  # `=` rather than `:=`
    commands: tuple[Command, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Action:
    pos: int
    pipeline: Pipeline


@dataclass(frozen=True, slots=True)
class Branch:
    """if / with / range: the pipeline, the list, and the else list (None when absent)."""

    kind: str  # "if", "with" or "range"
    pos: int
    pipeline: Pipeline
    body: tuple[Any, ...]
    otherwise: tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class LoopControl:
    kind: str  # "break" or "continue"
    pos: int


@dataclass(frozen=True, slots=True)
class TemplateCall:
    """`{{template "name" pipeline}}`."""

    pos: int
    name: str
    pipeline: Pipeline | None
