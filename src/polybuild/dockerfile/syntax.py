"""The Dockerfile syntax tree: instructions (nodes) with locations, heredocs and warnings."""

from __future__ import annotations

from dataclasses import dataclass

# unicode.IsSpace over the Latin-1 range, which Go applies to single bytes when splitting flags.
GO_BYTE_SPACES = frozenset("\t\n\v\f\r \x85\xa0")


def is_space(ch: str) -> bool:
    """Go's unicode.IsSpace."""
    return ch in GO_BYTE_SPACES or (ch > "\xff" and ch.isspace())


@dataclass(frozen=True, slots=True)
class Location:
    """Where an instruction sits in its Dockerfile: first and last line, 1-based."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A here-document attached to RUN, COPY or ADD (`<<EOF` ... `EOF`)."""

    name: str
    content: str
    chomp: bool  # `<<-`: leading tabs are stripped from every content line
    expand: bool  # an unquoted marker: the content is subject to variable expansion
    file_descriptor: int = 0


@dataclass(frozen=True, slots=True)
class Node:
    """One instruction: its keyword as written, flags, arguments and (for ONBUILD) the child."""

    command: str
    flags: tuple[str, ...]
    args: tuple[str, ...]
    json: bool
    original: str
    location: Location
    heredocs: tuple[Heredoc, ...] = ()
    child: Node | None = None
    comments: tuple[str, ...] = ()

    @property
    def keyword(self) -> str:
        return self.command.lower()


@dataclass(frozen=True, slots=True)
class Warning_:
    """A parser warning that does not stop the build (an empty continuation line)."""

    message: str
    line: int


@dataclass(frozen=True, slots=True)
class ParseResult:
    """A parsed Dockerfile: its instructions, escape token, directives and warnings."""

    nodes: tuple[Node, ...]
    escape_token: str
    directives: tuple[tuple[str, str], ...]
    warnings: tuple[Warning_, ...]
    filename: str = "Dockerfile"

    def directive(self, name: str) -> str | None:
        for key, value in self.directives:
            if key == name:
                return value
        return None


def trim_leading_space(line: str) -> str:
    i = 0
    while i < len(line) and is_space(line[i]):
        i += 1
    return line[i:]
