"""What solving an op yields: a root filesystem as a chain of layers, or a plain directory tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polybuild.image.layer import Layer


@dataclass(frozen=True, slots=True)
class Chain:
    """A root filesystem: layers bottom first (empty for scratch), and its cache key."""

    layers: tuple[Layer, ...]
    key: str
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Tree:
    """A directory used as a copy or bind source (the build context, heredoc files)."""

    path: Path
    key: str


Result = Chain | Tree
