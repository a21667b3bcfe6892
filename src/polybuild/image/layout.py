"""OCI image layouts on disk: `oci-layout`, `index.json` and `blobs/<alg>/<hex>`, with names.

Names go in each index.json entry's annotations the way containerd and `docker save` write
them: `io.containerd.image.name` holds the full reference and
`org.opencontainers.image.ref.name` the tag (so `skopeo ... oci-archive:x.tar:TAG` works).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import msgspec

from polybuild.errors import ImageError, InvalidReferenceError
from polybuild.image import mediatypes as mt
from polybuild.image._wire import LayoutFileJSON, decode
from polybuild.image.content import BlobReader, BlobWriter, ContentStore, write_file_atomic
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Index, Stored, encode_index, parse_index
from polybuild.image.reference import Reference, parse
from polybuild.image.walk import reachable, require_complete

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_FILE_BYTES = msgspec.json.encode(LayoutFileJSON(image_layout_version=mt.OCI_LAYOUT_VERSION))


def check_layout_file(raw: bytes) -> None:
    """ImageError unless `raw` is an `oci-layout` file of a version we read (1.x)."""
    layout = decode(raw, LayoutFileJSON, "oci-layout file")
    if not layout.image_layout_version.startswith("1."):
        raise ImageError(f"unsupported OCI image layout version {layout.image_layout_version!r}")


def name_annotations(ref: Reference) -> dict[str, str]:
    """The index.json annotations that name an image `ref`."""
    return {
        mt.ANNOTATION_IMAGE_NAME: str(ref),
        mt.ANNOTATION_REF_NAME: ref.tag or str(ref),
    }


def entry_name(entry: Descriptor) -> Reference | None:
    """The image name an index.json entry carries, or None when it has only a bare tag."""
    full = entry.annotations.get(mt.ANNOTATION_IMAGE_NAME)
    ref_name = entry.annotations.get(mt.ANNOTATION_REF_NAME, "")
    # A ref.name without "/", ":" or "@" is a tag with no repository (skopeo, umoci).
    candidate = full or (ref_name if any(c in ref_name for c in "/:@") else "")
    if not candidate:
        return None
    try:
        return parse(candidate)
    except InvalidReferenceError as exc:
        raise ImageError(f"invalid image name in the layout's index.json: {exc}") from None


def layout_index(entries: Sequence[Descriptor]) -> Stored[Index]:
    """The index.json for a layout holding `entries` (already annotated with names)."""
    return encode_index(Index(manifests=tuple(entries), media_type=mt.OCI_INDEX))


class LayoutDir:
    """An OCI image layout directory, readable and writable as a blob source."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._blobs = ContentStore(self.path, ingest_dir=self.path / ".ingest", clean_temp=False)

    @classmethod
    def create(cls, path: Path) -> LayoutDir:
        """Create (or reuse) a layout at `path` with `oci-layout` and an index.json."""
        path = Path(path)
        try:
            (path / "blobs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageError(f"cannot create OCI layout {path}: {exc.strerror}") from exc
        layout = cls(path)
        if (path / LAYOUT_FILE).exists():
            check_layout_file((path / LAYOUT_FILE).read_bytes())
        else:
            write_file_atomic(path / LAYOUT_FILE, LAYOUT_FILE_BYTES, 0o644)
        if not (path / INDEX_FILE).exists():
            write_file_atomic(path / INDEX_FILE, layout_index(()).raw, 0o644)
        return layout

    def check(self) -> None:
        """ImageError unless this is an OCI layout (has a valid `oci-layout` and index.json)."""
        try:
            check_layout_file((self.path / LAYOUT_FILE).read_bytes())
        except FileNotFoundError:
            raise ImageError(
                f"{self.path} is not an OCI image layout: it has no {LAYOUT_FILE} file"
            ) from None

    def index(self) -> Stored[Index]:
        try:
            raw = (self.path / INDEX_FILE).read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot read {self.path / INDEX_FILE}: {exc.strerror}") from exc
        return parse_index(raw)

    def write_index(self, entries: Sequence[Descriptor]) -> Stored[Index]:
        stored = layout_index(entries)
        write_file_atomic(self.path / INDEX_FILE, stored.raw, 0o644)
        return stored

    def exists(self, digest: Digest) -> bool:
        return self._blobs.exists(digest)

    def get(self, digest: Digest) -> bytes:
        return self._blobs.get(digest)

    def open(self, digest: Digest) -> BlobReader:
        return self._blobs.open(digest)

    def writer(self, expected: Digest | None = None, size: int | None = None) -> BlobWriter:
        return self._blobs.writer(expected, size)

    def close(self) -> None:
        """Remove the scratch directory writes used, if it is empty."""
        with contextlib.suppress(OSError):
            (self.path / ".ingest").rmdir()


def copy_blob(
    source: ContentStore | LayoutDir, target: ContentStore | LayoutDir, d: Descriptor
) -> None:
    """Copy one blob, verified on both ends; a blob already in `target` is not copied."""
    if target.exists(d.digest):
        if isinstance(target, ContentStore):
            target.touch(d.digest)
        return
    with source.open(d.digest) as reader, target.writer(d.digest, d.size) as writer:
        for chunk in reader:
            writer.write(chunk)


def export_dir(path: Path, source: ContentStore, entries: Sequence[Descriptor]) -> Stored[Index]:
    """Write the images `entries` point at (every platform) into the layout at `path`.

    Existing entries with the same name are replaced; others are kept.
    """
    found = reachable(source, entries)
    require_complete(found, "image")
    layout = LayoutDir.create(path)
    try:
        for descriptor in found.present.values():
            copy_blob(source, layout, descriptor)
        names = {str(n) for e in entries if (n := entry_name(e)) is not None}
        kept = [e for e in layout.index().value.manifests if str(entry_name(e) or "") not in names]
        return layout.write_index([*kept, *entries])
    finally:
        layout.close()


def import_dir(path: Path, store: ContentStore) -> Stored[Index]:
    """Copy every image of the layout at `path` into `store`, verifying every blob."""
    layout = LayoutDir(path)
    layout.check()
    index = layout.index()
    found = reachable(layout, index.value.manifests)
    require_complete(found, f"OCI layout {path}")
    for descriptor in found.present.values():
        copy_blob(layout, store, descriptor)
    return index
