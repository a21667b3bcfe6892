"""`.dockerignore` files: reading them as moby does, and matching context paths against them.

Matching is `e2b-dockerfile-utils`' port of moby/patternmatcher (`**`, `!` exceptions, the last
matching pattern wins); reading follows moby's ignorefile.ReadAll.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from e2b_dockerfile_utils import PatternMatcher

from polybuild.errors import DockerfileError


def read_patterns(text: str) -> tuple[str, ...]:
    """Patterns from `.dockerignore` text: comments and blanks dropped, each one cleaned."""
    patterns: list[str] = []
    for index, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if index == 0 else raw
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            # moby cleans each pattern and makes it relative to the context root
            pattern = posixpath.normpath(pattern)
            pattern = pattern.lstrip("/") or "."
        patterns.append("!" + pattern if invert else pattern)
    return tuple(patterns)


def ignore_file_for(context_dir: Path, dockerfile: Path | None = None) -> Path | None:
    """The ignore file that applies: `<Dockerfile>.dockerignore` beside it, else `.dockerignore`."""
    if dockerfile is not None:
        beside = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if beside.is_file():
            return beside
    default = context_dir / ".dockerignore"
    return default if default.is_file() else None


def load_patterns(context_dir: Path, dockerfile: Path | None = None) -> tuple[str, ...]:
    """The ignore patterns for a build context (empty when there is no ignore file)."""
    path = ignore_file_for(context_dir, dockerfile)
    if path is None:
        return ()
    try:
        return read_patterns(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise DockerfileError(f"cannot read {path}: {exc.strerror}", filename=str(path)) from None


class IgnoreMatcher:
    """Decides which context paths (slash-separated, relative to the root) are excluded."""

    __slots__ = ("_matcher", "patterns")

    def __init__(self, patterns: tuple[str, ...] | list[str]) -> None:
        self.patterns = tuple(patterns)
        try:
            self._matcher = PatternMatcher(list(self.patterns))
        except ValueError as exc:
            raise DockerfileError(
                f"invalid .dockerignore pattern: {exc}", filename=".dockerignore"
            ) from None

    def excluded(self, path: str) -> bool:
        """True when `path` is left out of the build context."""
        return bool(self._matcher.matches(path))

    def may_match_under(self, directory: str) -> bool:
        """Whether a `!` pattern may bring back a path under `directory` (else skip it whole)."""
        return bool(self._matcher.may_match_under(directory))
