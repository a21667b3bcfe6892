"""What the image and cache scans found in use, so that `check` can tell what nothing uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from polybuild.image.digest import Digest

__all__ = ["InUse"]


@dataclass(frozen=True, slots=True)
class InUse:
    """Blobs and layer diff-ids in use, and the whole blob that holds each layer."""

    blobs: set[Digest] = field(default_factory=set)
    diff_ids: set[str] = field(default_factory=set)
    layers: dict[str, Digest] = field(default_factory=dict)  # diff-id hex -> whole layer blob

    def __or__(self, other: InUse) -> InUse:
        """Both together; where both name a layer's blob, `other`'s."""
        return InUse(
            self.blobs | other.blobs,
            self.diff_ids | other.diff_ids,
            {**self.layers, **other.layers},
        )
