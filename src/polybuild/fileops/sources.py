"""COPY/ADD sources: cleaning, wildcards, --parents pivots, --exclude and .dockerignore filters."""

from __future__ import annotations

from dataclasses import dataclass

from polybuild.dockerfile.ignore import IgnoreMatcher
from polybuild.fileops.errors import FileOpError
from polybuild.fileops.pattern import WildcardSource, contains_wildcards, go_match
from polybuild.fileops.view import SourceView
from polybuild.rootfs import clean_path

__all__ = [
    "ExpandOptions",
    "SourceMatch",
    "expand_source",
    "filtered",
    "included",
    "may_include_under",
]


@dataclass(frozen=True, slots=True)
class SourceMatch:
    """One source path to copy, where it leads, and its --parents pattern."""

    parts: tuple[str, ...]  # relative to the source root, as written (its name is kept)
    resolved: tuple[str, ...]  # `parts` with symlinks followed in the source view
    include: str = ""  # --parents pattern, relative to `parts`


def filtered(
    exclude: IgnoreMatcher | None, ignore: IgnoreMatcher | None, rel: str, prefix: str
) -> tuple[bool, bool]:
    """(left out, may a `!` pattern still want something below) for entry `rel` of a source.

    --exclude patterns are relative to the copied source, .dockerignore patterns to the root.
    """
    full = f"{prefix}/{rel}" if prefix else rel
    by_exclude = exclude is not None and exclude.excluded(rel)
    by_ignore = ignore is not None and ignore.excluded(full)
    descend = (not by_exclude or (exclude is not None and exclude.may_match_under(rel))) and (
        not by_ignore or (ignore is not None and ignore.may_match_under(full))
    )
    return by_exclude or by_ignore, descend


def included(pattern: str, rel: str) -> bool:
    """fsutil include patterns: a match on the path or on any of its parent directories."""
    return IgnoreMatcher((pattern,)).excluded(rel)


def may_include_under(pattern: str, rel: str) -> bool:
    """Whether `pattern` could match something below directory `rel` (prunes the walk)."""
    if not pattern:
        return False
    segments = pattern.split("/")
    parts = rel.split("/")
    for index, part in enumerate(parts):
        if index >= len(segments):
            return False
        if "**" in segments[index]:
            return True
        if not go_match(segments[index], part):
            return False
    return len(segments) > len(parts)


@dataclass(frozen=True, slots=True)
class ExpandOptions:
    """How sources are expanded: --parents, --exclude, symlinks, wildcards."""

    parents: bool
    exclude: IgnoreMatcher | None
    follow_symlinks: bool
    allow_wildcards: bool
    allow_empty: bool


def expand_source(
    view: SourceView, source: str, opts: ExpandOptions, instruction: str
) -> list[SourceMatch]:
    """The source paths one COPY/ADD argument stands for, after wildcards (and --parents).

    Every path is looked up in `view`, so what .dockerignore leaves out is "not found"
    however it is reached: by name, by a wildcard, or through a symlink at any depth.
    """
    include = ""
    shown = "/" + "/".join(clean_path(source))
    if opts.parents:
        pivot, sep, pattern = source.partition("/./")
        if not sep:
            pivot, pattern = "/", source
        include = "/".join(clean_path(pattern))
        source = pivot
        if not contains_wildcards(pivot) and not contains_wildcards(pattern):
            required = "/".join(clean_path(f"{pivot}/{pattern}"))
            view.lookup(required, follow_last=False, instruction=instruction)
    wild = WildcardSource.parse("/".join(clean_path(source)))
    if not wild.pattern or not opts.allow_wildcards:
        parts = tuple(clean_path(source))
        resolved = view.lookup(
            "/".join(parts), follow_last=opts.follow_symlinks, shown=shown, instruction=instruction
        )
        return [SourceMatch(parts, resolved, include)]
    base = view.lookup(
        "/".join(wild.base), follow_last=opts.follow_symlinks, shown=shown, instruction=instruction
    )
    base_rel = "/".join(base)
    found = [
        m
        for m in wild.matches(str(view.host(base)))
        if (opts.exclude is None or not opts.exclude.excluded(m))
        and view.exists(f"{base_rel}/{m}" if base_rel else m)
    ]
    if not found and not opts.allow_empty:
        raise FileOpError(f'no source files were specified: "{shown}"', instruction=instruction)
    matches: list[SourceMatch] = []
    for m in found:
        parts = (*base, *m.split("/"))
        rel = "/".join(parts)
        resolved = view.lookup(rel, follow_last=opts.follow_symlinks, instruction=instruction)
        matches.append(SourceMatch(parts, resolved, include))
    return matches
