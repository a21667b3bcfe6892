"""Dockerfile text -> syntax tree: directives, continuations, heredocs, flags, JSON/shell forms.

The rules follow BuildKit's `frontend/dockerfile/parser` so that a Dockerfile means the same
thing here as under `docker buildx build`; `dump()` prints the tree in BuildKit's test format.
"""

from __future__ import annotations

import re

from polybuild.dockerfile.line_parsers import LineError, node_from_line
from polybuild.dockerfile.shell import lex_words
from polybuild.dockerfile.syntax import (
    Heredoc,
    Location,
    Node,
    ParseResult,
    Warning_,
    trim_leading_space,
)
from polybuild.errors import DockerfileError

# Go's regexp `\s` and `[\t\v\f\r ]`: spelled out because Python's classes are Unicode-wide.
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_GO_SPACE = r"[\t\n\f\r ]"
_DIRECTIVE = re.compile(
    rf"^#{_GO_SPACE}*([a-zA-Z][a-zA-Z0-9]*){_GO_SPACE}*={_GO_SPACE}*(.+?){_GO_SPACE}*$"
)
_HEREDOC = re.compile(r"^([0-9]*)<<(-?)([^<]*)$")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_LINES = re.compile(r"[^\n]*\n|[^\n]+")
_VALID_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_COMMANDS = frozenset({"add", "copy", "run"})
# bufio.Scanner's default token limit; BuildKit fails on longer lines, and so do we.
MAX_LINE_BYTES = 64 * 1024


class _Directives:
    def __init__(self, filename: str) -> None:
        self.escape = "\\"
        self.done = False
        self.found: dict[str, str] = {}
        self.filename = filename
        self.continuation = _continuation_regex("\\")

    def check(self, line: str, lineno: int) -> None:
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        key = match.group(1).lower() if match else ""
        if match is None or key not in _VALID_DIRECTIVES:
            self.done = True
            return
        if key in self.found:
            raise DockerfileError(
                f"only one {key} parser directive can be used",
                line=lineno,
                filename=self.filename,
            )
        value = match.group(2)
        self.found[key] = value
        if key == "escape":
            if value not in ("`", "\\"):
                raise DockerfileError(
                    f"invalid escape token '{value}' does not match ` or \\",
                    line=lineno,
                    filename=self.filename,
                    hint="use `# escape=\\` (the default) or `# escape=``",
                )
            self.escape = value
            self.continuation = _continuation_regex(value)


def _continuation_regex(token: str) -> re.Pattern[str]:
    # The token continues a line when it is the last non-blank character and is not itself
    # escaped; the second branch covers a token alone on its line.
    t = re.escape(token)
    return re.compile(f"([^{t}]){t}[ \\t]*$|^{t}[ \\t]*$")


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return trim_leading_space(_trim_newline(line)).startswith("#")


def _split_lines(text: str) -> list[str]:
    return _LINES.findall(text)


def parse(source: str | bytes, *, filename: str = "Dockerfile") -> ParseResult:
    """Parse Dockerfile text; raises DockerfileError (with the line) for anything invalid."""
    if isinstance(source, bytes):
        # surrogateescape keeps invalid bytes round-trippable, as Go keeps raw bytes
        source = source.decode("utf-8", errors="surrogateescape")
    if source.startswith("\ufeff"):
        source = source[1:]
    lines = _split_lines(source)
    directives = _Directives(filename)
    nodes: list[Node] = []
    warnings: list[Warning_] = []
    comments: list[str] = []
    current = 0
    index = 0

    def process(raw: str, strip: bool, lineno: int) -> str:
        if len(raw.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES:
            raise DockerfileError(
                f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES - 1}",
                line=lineno,
                filename=filename,
            )
        line = _trim_newline(raw)
        if strip:
            line = trim_leading_space(line)
        directives.check(line, lineno)
        return "" if line.startswith("#") else line

    while index < len(lines):
        raw = lines[index]
        index += 1
        if _is_comment(raw):
            # an empty `#` line ends the comments an instruction carries (BuildKit's
            # PrevComment, read by the lint), and a directive is not one of them
            comment = trim_leading_space(_trim_newline(raw))[1:].strip()
            comments = [*comments, comment] if comment else []
        found = len(directives.found)
        line = process(raw, True, current + 1)
        if len(directives.found) > found and comments:
            comments.pop()
        current += 1
        start = current
        line, ended = _trim_continuation(line, directives)
        if ended and not line:
            continue
        empty_continuation = False
        while not ended and index < len(lines):
            raw = lines[index]
            index += 1
            continued = process(raw, False, current + 1)
            current += 1
            if _is_comment(raw):
                continue
            if not trim_leading_space(_trim_newline(raw)):
                empty_continuation = True
                continue
            continued, ended = _trim_continuation(continued, directives)
            line += continued
        if empty_continuation:
            warnings.append(Warning_(f"Empty continuation line found in: {line}", current))
        try:
            node = node_from_line(line, directives.escape, Location(start, current))
        except LineError as exc:
            raise DockerfileError(
                exc.message, line=start, end_line=current, filename=filename, hint=exc.hint
            ) from None
        if _can_contain_heredoc(node):
            node, index, current = _read_heredocs(node, line, lines, index, current, filename)
        nodes.append(_with(node, comments=tuple(comments)))
        comments = []
    if not nodes:
        raise DockerfileError(
            "file with no instructions",
            line=current,
            filename=filename,
            hint="a Dockerfile needs at least a FROM instruction",
        )
    return ParseResult(
        nodes=tuple(nodes),
        escape_token=directives.escape,
        directives=tuple(directives.found.items()),
        warnings=tuple(warnings),
        filename=filename,
    )


def _with(node: Node, **changes: object) -> Node:
    fields = {name: getattr(node, name) for name in Node.__slots__}
    fields.update(changes)
    return Node(**fields)


def _trim_continuation(line: str, directives: _Directives) -> tuple[str, bool]:
    if directives.continuation.search(line):
        return directives.continuation.sub(r"\1", line), False
    return line, True


def _can_contain_heredoc(node: Node) -> bool:
    target = node.child if node.keyword == "onbuild" and node.child is not None else node
    return target.keyword in _HEREDOC_COMMANDS and not target.json


def _read_heredocs(
    node: Node, line: str, lines: list[str], index: int, current: int, filename: str
) -> tuple[Node, int, int]:
    start = node.location.start
    try:
        markers = heredocs_in_line(line)
    except ValueError as exc:
        raise DockerfileError(str(exc), line=start, end_line=current, filename=filename) from None
    docs: list[Heredoc] = []
    for marker in markers:
        content: list[str] = []
        terminated = False
        while index < len(lines):
            raw = lines[index]
            index += 1
            current += 1
            candidate = _trim_newline(raw)
            if marker.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == marker.name:
                terminated = True
                break
            content.append(raw)
        if not terminated:
            raise DockerfileError(
                "unterminated heredoc",
                line=start,
                end_line=current,
                filename=filename,
                hint=f"end the here-document with a line holding only {marker.name}",
            )
        body = "".join(content)
        docs.append(Heredoc(marker.name, body, marker.chomp, marker.expand, marker.file_descriptor))
    return _with(node, heredocs=tuple(docs), location=Location(start, current)), index, current


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc marker `word` stands for (`<<EOF`, `<<-"EOF"`, `3<<EOF`), or None."""
    match = _HEREDOC.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    words = lex_words(rest, skip_unset=True)
    if len(words) != 1:
        return None
    raw_words = lex_words(rest, skip_unset=True, raw_quotes=True)
    if len(raw_words) != 1:
        raise ValueError(f"internal lexing of heredoc produced inconsistent results: {rest}")

    def quotes(text: str) -> int:
        return text.count("'") + text.count('"')

    # Quotes anywhere in the marker (removed by one lexing, kept by the other) disable expansion.
    expand = quotes(words[0]) == quotes(raw_words[0])
    return Heredoc(words[0], "", match.group(2) == "-", expand, int(match.group(1) or "0"))


def heredocs_in_line(line: str) -> list[Heredoc]:
    """Every heredoc marker among the words of an instruction line, in order."""
    if "<<" not in line:
        return []
    try:
        words = lex_words(line, skip_unset=True, raw_quotes=True, raw_escapes=True)
    except ValueError:
        return []
    return [doc for doc in (parse_heredoc(word) for word in words) if doc is not None]


def chomp_heredoc(content: str) -> str:
    """Content of a `<<-` heredoc: leading tabs removed from every line."""
    return _LEADING_TABS.sub("", content)
