"""Arguments of one instruction line: flags, JSON and shell forms, words, name=value pairs.

These are BuildKit's per-instruction argument parsers (`parser/line_parsers.go`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from polybuild.dockerfile.syntax import GO_BYTE_SPACES, Location, Node, is_space, trim_leading_space

# Go's regexp `[\t\v\f\r ]`: spelled out because Python's classes are Unicode-wide.
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


class LineError(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def node_from_line(line: str, escape: str, location: Location) -> Node:
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
            if ch in GO_BYTE_SPACES:
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
            if ch in GO_BYTE_SPACES:
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
    rest = trim_leading_space(rest)
    if not rest.startswith("["):
        raise _NotJSON
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _NotJSON from None
    if not isinstance(value, list):
        raise _NotJSON
    if not all(isinstance(item, str) for item in value):
        raise LineError(
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
                raise LineError(f"{key} must have two arguments", hint=f"write {key} name=value")
            return [parts[0], parts[1], ""], False, None
        args: list[str] = []
        for word in words:
            if "=" not in word:
                raise LineError(
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
    return [], False, node_from_line(rest, escape, location)


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
