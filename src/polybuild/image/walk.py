"""Walking an image graph: the blobs an index or manifest references, from any blob source."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from polybuild.errors import BlobNotFoundError, ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import parse_index, parse_manifest

# image-spec asks registries to accept manifests up to 4 MiB; anything much larger is not one.
MAX_MANIFEST_SIZE = 16 << 20


class BlobSource(Protocol):
    """Where blobs can be read from by digest (a content store, an OCI layout)."""

    def exists(self, digest: Digest) -> bool: ...

    def get(self, digest: Digest) -> bytes: ...


def read_document(source: BlobSource, descriptor: Descriptor) -> bytes:
    """The bytes of a manifest, index or config, checked against the descriptor's size."""
    if descriptor.size > MAX_MANIFEST_SIZE:
        raise ImageError(
            f"{descriptor.media_type} {descriptor.digest} is {descriptor.size} bytes; "
            f"refusing to parse more than {MAX_MANIFEST_SIZE}"
        )
    raw = source.get(descriptor.digest)
    if len(raw) != descriptor.size:
        raise ImageError(
            f"blob {descriptor.digest} has {len(raw)} bytes but its descriptor says "
            f"{descriptor.size}"
        )
    return raw


def children(source: BlobSource, descriptor: Descriptor) -> tuple[Descriptor, ...]:
    """The descriptors an index or manifest points at; other blobs have none."""
    if mt.is_index(descriptor.media_type):
        return parse_index(read_document(source, descriptor), descriptor.media_type).value.manifests
    if mt.is_manifest(descriptor.media_type):
        manifest = parse_manifest(read_document(source, descriptor), descriptor.media_type).value
        return (manifest.config, *manifest.layers)
    return ()


@dataclass(frozen=True, slots=True)
class Reachable:
    """The blobs reachable from some roots: present ones by digest, and those missing."""

    present: dict[Digest, Descriptor]
    missing: dict[Digest, Descriptor]

    @property
    def size(self) -> int:
        """Total size of the unique present blobs."""
        return sum(d.size for d in self.present.values())


def reachable(source: BlobSource, roots: Iterable[Descriptor]) -> Reachable:
    """Every blob reachable from `roots`, depth first; a missing blob's children are unknown.

    Non-distributable (foreign) layers may be missing; the caller decides what a missing
    blob means.
    """
    present: dict[Digest, Descriptor] = {}
    missing: dict[Digest, Descriptor] = {}
    stack = list(roots)
    while stack:
        descriptor = stack.pop()
        if descriptor.digest in present or descriptor.digest in missing:
            continue
        if not source.exists(descriptor.digest):
            missing[descriptor.digest] = descriptor
            continue
        present[descriptor.digest] = descriptor
        try:
            stack.extend(children(source, descriptor))
        except BlobNotFoundError:
            present.pop(descriptor.digest)
            missing[descriptor.digest] = descriptor
    return Reachable(present, missing)


def require_complete(found: Reachable, what: str) -> None:
    """ImageError naming the missing blobs, unless only foreign layers are missing."""
    needed = [
        d for d in found.missing.values() if not (mt.is_nondistributable(d.media_type) or d.urls)
    ]
    if needed:
        listed = ", ".join(f"{d.digest} ({d.media_type})" for d in needed[:5])
        more = f" and {len(needed) - 5} more" if len(needed) > 5 else ""
        raise ImageError(
            f"{what} is incomplete: missing {listed}{more}",
            hint="pull or load the image again with all its platforms",
        )
