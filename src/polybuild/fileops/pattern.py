"""Go `filepath.Match` wildcards and BuildKit's wildcard resolution of COPY/ADD sources."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["WildcardSource", "contains_wildcards", "go_match", "split_wildcards"]


def contains_wildcards(name: str) -> bool:
    """True when `name` has an unescaped `*`, `?` or `[` (a backslash escapes the next byte)."""
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "*?[":
            return True
        i += 1
    return False


def split_wildcards(path: str) -> tuple[list[str], list[str]]:
    """Components before the first one with a wildcard, and that one with all after it."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for index, part in enumerate(parts):
        if contains_wildcards(part):
            return parts[:index], parts[index:]
    return parts, []


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str] | None:
    """A regex equal to Go's filepath.Match on `pattern`, or None for a malformed pattern."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 >= n:
                return None
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            klass, i = _char_class(pattern, i + 1)
            if klass is None:
                return None
            out.append(klass)
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _char_class(pattern: str, i: int) -> tuple[str | None, int]:
    """Parse a `[...]` class starting after the `[`; returns (regex, index after `]`)."""
    n = len(pattern)
    negate = i < n and pattern[i] == "^"
    if negate:
        i += 1
    ranges: list[str] = []
    first = True
    while True:
        if i >= n:
            return None, i
        if pattern[i] == "]" and not first:
            i += 1
            break
        first = False
        lo, i = _class_char(pattern, i)
        if lo is None:
            return None, i
        hi: str | None = lo
        if i < n and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
            if hi is None or hi < lo:
                return None, i
        assert hi is not None
        ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
    body = "".join(ranges)
    # Go's classes never match the separator, negated or not.
    return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), i


def _class_char(pattern: str, i: int) -> tuple[str | None, int]:
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        return None, i
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            return None, i
    return pattern[i], i + 1


def go_match(pattern: str, name: str) -> bool:
    """Go filepath.Match: `*` and `?` never cross `/`; a malformed pattern matches nothing."""
    compiled = _compile(pattern)
    return compiled is not None and compiled.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class WildcardSource:
    """A source split at its first wildcard component: `base` is looked up, `pattern` matched."""

    base: tuple[str, ...]
    pattern: tuple[str, ...]

    @classmethod
    def parse(cls, path: str) -> WildcardSource:
        base, pattern = split_wildcards(path)
        return cls(tuple(base), tuple(pattern))

    def matches(self, base_dir: str) -> list[str]:
        """Paths (relative to `base_dir`) matching `pattern`, in filepath.Walk order.

        Like BuildKit's resolveWildcards the walk never follows symlinks and stops at a
        matched directory; it also stops at the pattern's depth, since `*` never crosses `/`.
        """
        depth = len(self.pattern)
        joined = "/".join(self.pattern)
        found: list[str] = []

        def walk(host: str, rel: list[str]) -> None:
            try:
                names = sorted(os.listdir(host))
            except NotADirectoryError:
                return
            for name in names:
                child_rel = [*rel, name]
                child = os.path.join(host, name)
                is_dir = stat.S_ISDIR(os.lstat(child).st_mode)
                if len(child_rel) == depth:
                    if go_match(joined, "/".join(child_rel)):
                        found.append("/".join(child_rel))
                elif is_dir and go_match(
                    "/".join(self.pattern[: len(child_rel)]), "/".join(child_rel)
                ):
                    walk(child, child_rel)

        walk(base_dir, [])
        return found
