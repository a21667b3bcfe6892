"""The local image store: names -> top-level descriptors, over the content store in the data root.

    <data root>/content/       the ContentStore (blobs by digest)
    <data root>/images.json    name -> descriptor records, replaced atomically
    <data root>/images.lock    held by every writer (read-modify-write of images.json, gc)
    <data root>/leases/        live writers' leases (see polybuild.image.lease)

Readers need no lock: images.json only ever changes by rename.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import filelock
import msgspec

from polybuild.dataroot import data_root, make_private
from polybuild.errors import ImageError, ImageNotFoundError, InvalidReferenceError
from polybuild.image import mediatypes as mt
from polybuild.image._wire import DescriptorJSON, decode, encode
from polybuild.image.content import ContentStore, write_file_atomic
from polybuild.image.descriptor import Descriptor, descriptor_from_wire, descriptor_to_wire
from polybuild.image.digest import Digest
from polybuild.image.lease import hold_lease, oldest_live_lease, sweep_lock
from polybuild.image.reference import Reference, parse
from polybuild.image.select import Selected, platform_manifests, select_manifest
from polybuild.image.walk import reachable
from polybuild.platforms import Platform
from polybuild.syscalls import pid_alive

_ID_PREFIX = re.compile(r"^(?:sha256:)?([0-9a-f]{3,64})$")
_STORE_VERSION = 1


class _RecordJSON(msgspec.Struct, frozen=True):
    name: str
    target: DescriptorJSON


class _StoreJSON(msgspec.Struct, frozen=True):
    version: int
    images: list[_RecordJSON]


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A named image (or an unnamed one, `name is None`) and its top-level descriptor."""

    name: Reference | None
    target: Descriptor

    @property
    def key(self) -> str:
        return str(self.name) if self.name else str(self.target.digest)


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One row of `polybuild images`."""

    record: ImageRecord
    platforms: tuple[Platform, ...]
    size: int


@dataclass(frozen=True, slots=True)
class Removal:
    """What `remove` did: names untagged, top-level digests deleted, blobs and bytes freed."""

    untagged: tuple[Reference, ...]
    deleted: tuple[Digest, ...]
    blobs_removed: int
    bytes_freed: int


def remove_dead_scratch(directory: Path) -> None:
    """Remove the `step-<pid>-...` scratch directories (build steps, imports) under
    `directory` whose process is gone."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        pid = entry.name.split("-")[1] if entry.name.startswith("step-") else ""
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)


class ImageStore:
    """Named images in the data root, safe for several polybuild processes at once."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = make_private(Path(root) if root is not None else data_root())
        self.content = ContentStore(self.root / "content", private=True)
        self._index_path = self.root / "images.json"
        self._lock = filelock.FileLock(str(self.root / "images.lock"), mode=0o600)
        # As the content store's partial blobs: whatever command runs next cleans up after
        # a killed one (an import's scratch directory would otherwise wait for a build).
        remove_dead_scratch(self.root / "tmp")

    # ---- records ---------------------------------------------------------------------------

    def records(self) -> list[ImageRecord]:
        """Every image, named ones sorted by name, then unnamed ones."""
        try:
            raw = self._index_path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ImageError(f"cannot read the image store {self._index_path}: {exc}") from exc
        wire = decode(raw, _StoreJSON, f"image store {self._index_path}")
        records = []
        for entry in wire.images:
            name = parse(entry.name) if entry.name else None
            records.append(ImageRecord(name, descriptor_from_wire(entry.target, entry.name)))
        return records

    def _write(self, records: list[ImageRecord]) -> None:
        records.sort(key=lambda r: (r.name is None, r.key))
        wire = _StoreJSON(
            _STORE_VERSION,
            [_RecordJSON(str(r.name or ""), descriptor_to_wire(r.target)) for r in records],
        )
        write_file_atomic(self._index_path, encode(wire))

    def _update(self, change: Callable[[list[ImageRecord]], list[ImageRecord]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._write(change(self.records()))

    def lease(self) -> AbstractContextManager[Path]:
        """Protect blobs written while the block runs from garbage collection."""
        return hold_lease(self.root / "leases")

    def tag(self, name: str | Reference, target: Descriptor) -> Reference:
        """Name an image whose top-level blob is in the content store; returns the full name."""
        ref = parse(name) if isinstance(name, str) else name
        if ref.digest is not None:
            raise InvalidReferenceError(
                f"cannot name an image {ref.familiar()}: a name may not contain a digest",
                hint="give a NAME[:TAG]",
            )
        if not ref.tag:
            ref = ref.with_tag("latest")

        def change(records: list[ImageRecord]) -> list[ImageRecord]:
            # Checked under the lock: a garbage collection cannot remove it before we name it.
            if not self.content.exists(target.digest):
                raise ImageNotFoundError(
                    f"cannot tag {ref.familiar()}: {target.digest} is not stored"
                )
            # Every variant that is present must be whole (variants never pulled may be
            # absent): a name never points at an image with a config or layer missing.
            try:
                found = reachable(self.content, [target])
            except ImageError:
                found = None  # not a well-formed image: only the top blob is checked
            broken = [] if found is None else [
                d for d in found.missing.values()
                if not (mt.is_manifest(d.media_type) or mt.is_index(d.media_type)
                        or mt.is_nondistributable(d.media_type) or d.urls)
            ]  # fmt: skip
            if broken:
                raise ImageError(
                    f"cannot tag {ref.familiar()}: the image is incomplete, missing "
                    + ", ".join(str(d.digest) for d in broken[:3]),
                    hint="pull, load or build it again",
                )
            kept = [
                r
                for r in records
                if r.name != ref and not (r.name is None and r.target.digest == target.digest)
            ]
            return [*kept, ImageRecord(ref, target)]

        self._update(change)
        return ref

    def add_unnamed(self, target: Descriptor) -> None:
        """Keep an image that has no name (shown as <none>), unless it already has one."""
        if not self.content.exists(target.digest):
            raise ImageNotFoundError(f"cannot add {target.digest}: it is not stored")

        def change(records: list[ImageRecord]) -> list[ImageRecord]:
            if any(r.target.digest == target.digest for r in records):
                return records
            return [*records, ImageRecord(None, target)]

        self._update(change)

    # ---- lookup ----------------------------------------------------------------------------

    def resolve_all(self, text: str) -> list[ImageRecord]:
        """Every record `text` names: a name, `name@digest`, a digest, or an ID prefix."""
        records = self.records()
        by_name: list[ImageRecord] = []
        ref: Reference | None = None
        try:
            ref = parse(text)
        except InvalidReferenceError:
            if not _ID_PREFIX.match(text) and not text.startswith("sha256:"):
                raise
        if ref is not None and ref.digest is None:
            by_name = [r for r in records if r.name == ref]
        elif ref is not None:
            by_name = [
                r
                for r in records
                if r.name is not None
                and r.name.name == ref.name
                and r.target.digest == ref.digest
                and (not ref.tag or r.name.tag == ref.tag)
            ]
        if by_name:
            return by_name
        match = _ID_PREFIX.match(text)
        if match is None and text.startswith("sha256:"):
            Digest.parse(text)  # raises the precise digest error
        if match is not None:
            prefix = match.group(1)
            hits = [r for r in records if r.target.digest.hex.startswith(prefix)]
            digests = {r.target.digest for r in hits}
            if len(digests) > 1:
                raise ImageError(
                    f"image ID prefix {text!r} is ambiguous: it matches {len(digests)} images",
                    hint="give more digits of the ID, or the image's name",
                )
            if hits:
                return hits
        raise ImageNotFoundError(
            f"no such image: {text}", hint="list the images with `polybuild images`"
        )

    def resolve(self, text: str) -> ImageRecord:
        """The image `text` names (the named record first when several share a digest)."""
        return self.resolve_all(text)[0]

    def platforms(self, target: Descriptor) -> tuple[Platform, ...]:
        """The platforms an image provides (present manifests only), in index order."""
        seen: list[Platform] = []
        for _, platform in platform_manifests(self.content, target):
            if platform not in seen:
                seen.append(platform)
        return tuple(seen)

    def select(self, text: str, platform: Platform | None = None) -> Selected:
        """The manifest and config of image `text` for `platform` (default: this machine)."""
        return select_manifest(self.content, self.resolve(text).target, platform)

    def summaries(self) -> Iterator[ImageSummary]:
        """Each image with its platforms and size (unique blobs present in the store)."""
        for record in self.records():
            size = reachable(self.content, [record.target]).size
            yield ImageSummary(record, self.platforms(record.target), size)

    # ---- removal ---------------------------------------------------------------------------

    def remove(
        self, texts: list[str], *, force: bool = False, keep: Iterable[Digest] = ()
    ) -> Removal:
        """Remove images by name or ID, then collect blobs no image references.

        A name removes that name only. An ID (or digest) removes the image with all its
        names, which needs `force` when it has more than one name, as with `docker rmi`.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Resolve and remove under one lock so a name re-tagged meanwhile is not removed.
        with self._lock:
            doomed: dict[str, ImageRecord] = {}
            for text in texts:
                matches = self.resolve_all(text)
                by_id = any(r.name is None for r in matches) or not self._is_name(text, matches)
                if by_id:
                    digest = matches[0].target.digest
                    named = [r for r in self.records() if r.target.digest == digest]
                    if len([r for r in named if r.name]) > 1 and not force:
                        raise ImageError(
                            f"unable to delete {digest.short()} (must be forced): the image is "
                            f"referenced by {len(named)} names",
                            hint="remove the names one by one, or use --force",
                        )
                    matches = named
                doomed.update((r.key, r) for r in matches)

            def change(records: list[ImageRecord]) -> list[ImageRecord]:
                return [r for r in records if r.key not in doomed]

            self._update(change)
            remaining = {r.target.digest for r in self.records()}
            deleted = tuple(sorted({r.target.digest for r in doomed.values()} - remaining))
            blobs, freed = self.gc(keep)
            untagged = tuple(r.name for r in doomed.values() if r.name is not None)
            return Removal(untagged, deleted, blobs, freed)

    @staticmethod
    def _is_name(text: str, matches: list[ImageRecord]) -> bool:
        try:
            ref = parse(text)
        except InvalidReferenceError:
            return False
        return any(r.name == ref for r in matches)

    def gc(self, keep: Iterable[Digest] = ()) -> tuple[int, int]:
        """Delete blobs no image references (sparing `keep` and those under a live lease).

        `keep` holds other roots, such as the layers the build cache refers to.
        Returns (blobs removed, bytes freed). Holds the store lock so no name is added
        while it marks.
        """
        if not self.root.exists():
            return 0, 0
        removed = freed = 0
        with self._lock, sweep_lock(self.root / "leases", exclusive=True):
            kept = set(reachable(self.content, [r.target for r in self.records()]).present)
            kept.update(keep)
            protect_since = oldest_live_lease(self.root / "leases")
            for digest in list(self.content):
                if digest in kept:
                    continue
                path = self.content.path(digest)
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                if protect_since is not None and stat.st_mtime >= protect_since:
                    continue
                if self.content.delete(digest):
                    removed += 1
                    freed += stat.st_size
        self.content.gc_temp()
        return removed, freed
