"""What solving an op yields: a root filesystem as a chain of layers, or a plain directory tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polybuild.image import Digest


@dataclass(frozen=True, slots=True)
class LayerRef:
    """One layer blob in the content store and the digest of its uncompressed tar."""

    blob: Digest
    diff_id: Digest
    size: int
    media_type: str

    def to_json(self) -> dict[str, object]:
        return {
            "blob": str(self.blob),
            "diff_id": str(self.diff_id),
            "size": self.size,
            "media_type": self.media_type,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LayerRef:
        return cls(
            Digest.parse(str(data["blob"])),
            Digest.parse(str(data["diff_id"])),
            int(str(data["size"])),
            str(data["media_type"]),
        )


@dataclass(frozen=True, slots=True)
class Chain:
    """A root filesystem: layers bottom first (empty for scratch), and its cache key."""

    layers: tuple[LayerRef, ...]
    key: str
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Tree:
    """A directory used as a copy or bind source (the build context, heredoc files)."""

    path: Path
    key: str


Result = Chain | Tree
