"""A layer of an image: its blob's descriptor and the digest of the tar inside (its diff-id)."""

from __future__ import annotations

from dataclasses import dataclass

from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer, as snapshot commit writes it, the solver chains it and a manifest lists it.

    `descriptor` is the compressed blob in the content store (the manifest's entry);
    `diff_id` is the digest of the uncompressed tar (the image config's `rootfs.diff_ids`).
    """

    descriptor: Descriptor
    diff_id: Digest

    @property
    def blob(self) -> Digest:
        """The digest of the blob (what the content store keeps it under)."""
        return self.descriptor.digest
