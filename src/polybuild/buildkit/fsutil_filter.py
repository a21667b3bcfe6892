"""The include/exclude/followpaths filters a BuildKit daemon asks a FileSync sender to apply,
with fsutil's semantics (filter.go, followlinks.go): patterns are moby/patternmatcher's (the
`.dockerignore` language, evaluated through parent directories), followpaths add the targets
of the symlinks on those paths (resolved inside the directory) to the include patterns.

Matching reuses the patternmatcher port polybuild's `.dockerignore` support is built on
(`e2b_dockerfile_utils.PatternMatcher`, whose `matches` chains each parent directory's
results as fsutil's walk does); patterns are cleaned here as `patternmatcher.New` cleans
them, which differs from the port's own cleaning in a few corners handled below.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from e2b_dockerfile_utils import PatternMatcher

from polybuild.buildkit import fsutil_beneath as beneath
from polybuild.errors import RemoteError

# Characters that make fsutil walk every directory instead of pruning by prefix.
_PATTERN_CHARS = frozenset("*[]?^\\")


def go_clean(path: str) -> str:
    """Go's `filepath.Clean` of a slash-separated path."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One pattern as `patternmatcher.New` keeps it: cleaned, `!` taken off."""

    text: str
    exclusion: bool

    def without_trailing_glob(self) -> str:
        return self.text.removesuffix("/**").removesuffix("/*")


def _parse(patterns: Sequence[str], what: str) -> tuple[PatternMatcher, tuple[_Pattern, ...]]:
    parsed: list[_Pattern] = []
    for raw in patterns:
        text = raw.strip()
        if not text:
            continue
        text = go_clean(text)
        exclusion = text.startswith("!")
        if exclusion:
            if len(text) == 1:
                raise RemoteError(f'invalid {what}: illegal exclusion pattern: "!"')
            text = text[1:]
        parsed.append(_Pattern(text, exclusion))
    port: list[str] = []
    checked: list[str] = []
    for pattern in parsed:
        text = pattern.text
        if text.startswith(("/", "./", "../")) or text in (".", ".."):
            # Context paths are relative and clean: such a pattern matches nothing (the port
            # would clean it into one that matches); only its syntax is checked.
            checked.append(text)
            continue
        if text[0] == "#" or text[0].isspace():
            # The port drops `#...` as a comment and strips spaces; escaped, it keeps them.
            text = "\\" + text
        port.append("!" + text if pattern.exclusion else text)
    try:
        PatternMatcher(checked)
        return PatternMatcher(port), tuple(parsed)
    except ValueError as exc:
        raise RemoteError(f"invalid {what} {list(patterns)}: {exc}") from None


class PathFilter:
    """Which paths of a directory fsutil sends, and which directories it need not walk."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self._include = _parse(include, "include-patterns") if include else None
        self._exclude = _parse(exclude, "exclude-patterns") if exclude else None
        self._prefix_includes = self._include is not None and not any(
            _PATTERN_CHARS & set(p.without_trailing_glob())
            for p in self._include[1]
            if not p.exclusion
        )
        self._prefix_exceptions = self._exclude is not None and not any(
            _PATTERN_CHARS & set(p.without_trailing_glob()) for p in self._exclude[1] if p.exclusion
        )

    @property
    def filters(self) -> bool:
        return self._include is not None or self._exclude is not None

    def decide(self, path: str, is_dir: bool) -> tuple[bool, bool]:
        """(send it, walk into it): a path is sent when it passes both filters; a directory
        that is not sent is still walked unless nothing under it can pass (fsutil's prefix
        rules), and its children that pass bring it along."""
        send = True
        if self._include is not None:
            matcher, patterns = self._include
            if not matcher.matches(path):
                if is_dir and self._prefix_includes:
                    below = path + "/"
                    if not any(
                        (p.without_trailing_glob() + "/").startswith(below)
                        for p in patterns
                        if not p.exclusion
                    ):
                        return False, False
                send = False
        if self._exclude is not None:
            matcher, patterns = self._exclude
            if matcher.matches(path):
                if is_dir and self._prefix_exceptions:
                    below = path + "/"
                    if not any(
                        (p.without_trailing_glob() + "/").startswith(below)
                        for p in patterns
                        if p.exclusion
                    ):
                        return False, False
                send = False
        return send, is_dir


def dedupe_paths(paths: Sequence[str]) -> list[str] | None:
    """fsutil's dedupePaths: drops a path under the one kept before it; None (no filter at
    all) when one of them is `.`. Like fsutil, applied to lists that are not sorted too."""
    out: list[str] = []
    last = ""
    for path in paths:
        if path == ".":
            return None
        if path.startswith(last + "/"):
            continue
        out.append(path)
        last = path
    return out


def include_with_followpaths(
    root_fd: int, include: Sequence[str], followpaths: Sequence[str]
) -> tuple[str, ...]:
    """The include patterns with the resolved followpaths added (fsutil's NewFilterFS)."""
    if not followpaths:
        return tuple(include)
    targets = follow_links(root_fd, followpaths)
    if targets is None:
        return tuple(include)
    return tuple(dedupe_paths([*include, *targets]) or ())


def follow_links(root_fd: int, paths: Sequence[str]) -> list[str] | None:
    """Each path and every symlink on it, the links' targets resolved inside the directory
    (an absolute or escaping target stays under it) and followed further (fsutil's
    FollowLinks); a wildcard in a component matches the names of its directory."""
    resolved: set[str] = set()
    for path in paths:
        _append(root_fd, path, resolved)
    return dedupe_paths(sorted(resolved))


def _append(root_fd: int, path: str, resolved: set[str]) -> None:
    rest = go_clean(posixpath.join(".", path.lstrip("/")))
    current = "."
    while True:
        first, _, rest = rest.partition("/")
        current = go_clean(posixpath.join(current, first))
        targets = _read_symlink(root_fd, current, allow_wildcard=True)
        if (not rest or targets) and current in resolved:
            return
        if targets:
            resolved.add(current)
            for target in targets:
                _append(root_fd, posixpath.join(target, rest) if rest else target, resolved)
            return
        if not rest:
            resolved.add(current)
            return


def _read_symlink(root_fd: int, path: str, *, allow_wildcard: bool) -> list[str]:
    parent, base = posixpath.split(path)
    if allow_wildcard and _has_wildcards(base):
        names = beneath.list_dir(root_fd, beneath.split_path(parent))
        found: list[str] = []
        for name in names or ():
            if go_match_name(base, name):
                found += _read_symlink(root_fd, posixpath.join(parent, name), allow_wildcard=False)
        return found
    parts = beneath.split_path(path)
    if not parts or ".." in parts:
        return []
    st = beneath.lstat(root_fd, parts)
    if st is None or not _is_symlink(st.st_mode):
        return []
    link = go_clean(beneath.readlink(root_fd, parts))
    if link.startswith("/"):
        return [link]
    return [go_clean(posixpath.join("/", parent, link))]


def _is_symlink(mode: int) -> bool:
    return mode & 0o170000 == 0o120000


def _has_wildcards(name: str) -> bool:
    index = 0
    while index < len(name):
        char = name[index]
        if char == "\\":
            index += 1
        elif char in "*?[":
            return True
        index += 1
    return False


def go_match_name(pattern: str, name: str) -> bool:
    """Go's `filepath.Match` of one file name (`*`, `?`, `[...]` with `^` negation and ranges,
    `\\` escapes); a malformed pattern matches nothing, as fsutil ignores the error."""
    regex = _name_regex(pattern)
    return regex is not None and regex.fullmatch(name) is not None


def _name_regex(pattern: str) -> re.Pattern[str] | None:
    out: list[str] = []
    index, end = 0, len(pattern)
    while index < end:
        char = pattern[index]
        index += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if index == end:
                return None
            out.append(re.escape(pattern[index]))
            index += 1
        elif char == "[":
            negate = index < end and pattern[index] == "^"
            index += negate
            ranges: list[str] = []
            while True:
                if index >= end:
                    return None
                if pattern[index] == "]" and ranges:
                    index += 1
                    break
                low, index = _class_char(pattern, index)
                if low is None:
                    return None
                high = low
                if index < end and pattern[index] == "-":
                    upper, index = _class_char(pattern, index + 1)
                    if upper is None:
                        return None
                    high = upper
                ranges.append(f"{re.escape(low)}-{re.escape(high)}")
            out.append(("[^" if negate else "[") + "".join(ranges) + "]")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, index: int) -> tuple[str | None, int]:
    if index >= len(pattern) or pattern[index] in "-]":
        return None, index
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            return None, index
    return pattern[index], index + 1
