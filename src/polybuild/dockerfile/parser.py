"""Dockerfile text -> syntax tree: directives, continuations, heredocs, flags, JSON/shell forms.

The rules follow BuildKit's `frontend/dockerfile/parser` so that a Dockerfile means the same
thing here as under `docker buildx build`; `dump()` prints the tree in BuildKit's test format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from polybuild.dockerfile.shell import lex_words
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
# unicode.IsSpace over the Latin-1 range, which Go applies to single bytes when splitting flags.
_GO_BYTE_SPACES = frozenset("\t\n\v\f\r \x85\xa0")


def is_space(ch: str) -> bool:
    """Go's unicode.IsSpace."""
    return ch in _GO_BYTE_SPACES or (ch > "\xff" and ch.isspace())


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


def _trim_leading_space(line: str) -> str:
    i = 0
    while i < len(line) and is_space(line[i]):
        i += 1
    return line[i:]


def _is_comment(line: str) -> bool:
    return _trim_leading_space(_trim_newline(line)).startswith("#")


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
            line = _trim_leading_space(line)
        directives.check(line, lineno)
        return "" if line.startswith("#") else line

    while index < len(lines):
        raw = lines[index]
        index += 1
        if _is_comment(raw):
            comments.append(_trim_leading_space(_trim_newline(raw))[1:].strip())
        line = process(raw, True, current + 1)
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
            if not _trim_leading_space(_trim_newline(raw)):
                empty_continuation = True
                continue
            continued, ended = _trim_continuation(continued, directives)
            line += continued
        if empty_continuation:
            warnings.append(Warning_(f"Empty continuation line found in: {line}", current))
        try:
            node = _node_from_line(line, directives.escape, Location(start, current))
        except _LineError as exc:
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


class _LineError(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _node_from_line(line: str, escape: str, location: Location) -> Node:
    command, flags, rest = _split_command(line)
    parser = _LINE_PARSERS.get(command.lower(), _parse_ignore)
    args, is_json, child = parser(rest, escape, location)
    return Node(command, tuple(flags), tuple(args), is_json, line, location, child=child)


def _split_command(line: str) -> tuple[str, list[str], str]:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    if len(parts) == 1:
        return parts[0], [], ""
    rest, flags = _extract_flags(parts[1])
    return parts[0], flags, rest.strip()


def _extract_flags(line: str) -> tuple[str, list[str]]:
    """Leading `--flag[=value]` words; BuildKit scans bytes here, so we scan bytes too."""
    # Go appends each byte as a rune, so a flag's text is the Latin-1 reading of its bytes.
    data = line.encode("utf-8", "surrogateescape").decode("latin-1")
    flags: list[str] = []
    word: list[str] = []
    phase, quote, blank_ok, pos, size = "spaces", "", False, 0, len(data)

    def remainder(at: int) -> str:
        return data[at:].encode("latin-1").decode("utf-8", "surrogateescape")

    while pos <= size:
        ch = data[pos] if pos < size else ""
        if phase == "spaces":
            if pos == size:
                break
            if ch in _GO_BYTE_SPACES:
                pos += 1
                continue
            if ch != "-" or pos + 1 == size or data[pos + 1] != "-":
                return remainder(pos), flags
            phase = "word"
        if pos == size:
            text = "".join(word)
            if text != "--" and (blank_ok or word):
                flags.append(text)
            break
        if phase == "word":
            if ch in _GO_BYTE_SPACES:
                phase = "spaces"
                text = "".join(word)
                if text == "--":
                    return remainder(pos), flags
                if blank_ok or word:
                    flags.append(text)
                word, blank_ok = [], False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote, blank_ok, phase = ch, True, "quote"
                pos += 1
                continue
        elif ch == quote:
            phase = "word"
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == size:
                if phase == "quote":
                    phase = "word"
                pos += 1
                continue
            pos += 1
            ch = data[pos]
        word.append(ch)
        pos += 1
    return "", flags


_Parsed = tuple[list[str], bool, "Node | None"]


def _parse_ignore(rest: str, escape: str, location: Location) -> _Parsed:
    return [], False, None


def _parse_string(rest: str, escape: str, location: Location) -> _Parsed:
    return ([rest] if rest else []), False, None


def _parse_whitespace_delimited(rest: str, escape: str, location: Location) -> _Parsed:
    return (_WHITESPACE.split(rest) if rest else []), False, None


class _NotJSON(Exception):
    pass


def _reject_constant(name: str) -> object:
    raise _NotJSON(name)  # Go's encoding/json has no NaN or Infinity


def _parse_json(rest: str) -> list[str]:
    rest = _trim_leading_space(rest)
    if not rest.startswith("["):
        raise _NotJSON
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _NotJSON from None
    if not isinstance(value, list):
        raise _NotJSON
    if not all(isinstance(item, str) for item in value):
        raise _LineError(
            "when using JSON array syntax, arrays must be comprised of strings only",
            hint='write every element as a string: ["executable", "arg"]',
        )
    return value


def _parse_maybe_json(rest: str, escape: str, location: Location) -> _Parsed:
    if not rest:
        return [], False, None
    try:
        return _parse_json(rest), True, None
    except _NotJSON:
        return [rest], False, None


def _parse_maybe_json_to_list(rest: str, escape: str, location: Location) -> _Parsed:
    try:
        return _parse_json(rest), True, None
    except _NotJSON:
        return _parse_whitespace_delimited(rest, escape, location)


def _parse_health(rest: str, escape: str, location: Location) -> _Parsed:
    sep = 0
    while sep < len(rest) and not is_space(rest[sep]):
        sep += 1
    if sep == 0:
        return [], False, None
    nxt = sep
    while nxt < len(rest) and is_space(rest[nxt]):
        nxt += 1
    args, is_json, _ = _parse_maybe_json(rest[nxt:], escape, location)
    return [rest[:sep], *args], is_json, None


def parse_words(rest: str, escape: str) -> list[str]:
    """Split on blanks, honouring quotes and escapes but keeping them (ENV/LABEL/ARG)."""
    words: list[str] = []
    word: list[str] = []
    phase, quote, blank_ok, pos, size = "spaces", "", False, 0, len(rest)
    while pos <= size:
        ch = rest[pos] if pos < size else ""
        if phase == "spaces":
            if pos == size:
                break
            if is_space(ch):
                pos += 1
                continue
            phase = "word"
        if pos == size:
            if blank_ok or word:
                words.append("".join(word))
            break
        if phase == "word":
            if is_space(ch):
                phase = "spaces"
                if blank_ok or word:
                    words.append("".join(word))
                word, blank_ok = [], False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote, blank_ok, phase = ch, True, "quote"
            if ch == escape:
                if pos + 1 == size:
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = rest[pos]
        else:
            if ch == quote:
                phase = "word"
            if ch == escape and quote != "'":
                if pos + 1 == size:
                    phase = "word"
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = rest[pos]
        word.append(ch)
        pos += 1
    return words


def _parse_name_val(key: str) -> Callable[[str, str, Location], _Parsed]:
    def parse_kv(rest: str, escape: str, location: Location) -> _Parsed:
        words = parse_words(rest, escape)
        if not words:
            return [], False, None
        if "=" not in words[0]:
            parts = _WHITESPACE.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise _LineError(f"{key} must have two arguments", hint=f"write {key} name=value")
            return [parts[0], parts[1], ""], False, None
        args: list[str] = []
        for word in words:
            if "=" not in word:
                raise _LineError(
                    f"Syntax error - can't find = in {json.dumps(word)}. "
                    "Must be of the form: name=value"
                )
            name, value = word.split("=", 1)
            args += [name, value, "="]
        return args, False, None

    return parse_kv


def _parse_name_or_name_val(rest: str, escape: str, location: Location) -> _Parsed:
    return parse_words(rest, escape), False, None


def _parse_sub_command(rest: str, escape: str, location: Location) -> _Parsed:
    if not rest:
        return [], False, None
    return [], False, _node_from_line(rest, escape, location)


_LINE_PARSERS: dict[str, Callable[[str, str, Location], _Parsed]] = {
    "add": _parse_maybe_json_to_list,
    "arg": _parse_name_or_name_val,
    "cmd": _parse_maybe_json,
    "copy": _parse_maybe_json_to_list,
    "entrypoint": _parse_maybe_json,
    "env": _parse_name_val("ENV"),
    "expose": _parse_whitespace_delimited,
    "from": _parse_whitespace_delimited,
    "healthcheck": _parse_health,
    "label": _parse_name_val("LABEL"),
    "maintainer": _parse_string,
    "onbuild": _parse_sub_command,
    "run": _parse_maybe_json,
    "shell": _parse_maybe_json,
    "stopsignal": _parse_string,
    "user": _parse_string,
    "volume": _parse_maybe_json_to_list,
    "workdir": _parse_string,
}
