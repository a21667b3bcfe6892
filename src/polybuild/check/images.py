"""Every stored image whole: index -> manifests -> config and layers present, sized and parsable."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from polybuild.check.inuse import InUse
from polybuild.check.problems import Problem
from polybuild.errors import PolybuildError
from polybuild.image import mediatypes as mt
from polybuild.image.config import parse_config
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Stored, is_attestation, parse_index, parse_manifest
from polybuild.image.store import ImageRecord, ImageStore
from polybuild.image.walk import read_document
from polybuild.platforms import format_platform

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImageScan:
    """What is wrong with the images, how many there are, and what they use."""

    problems: list[Problem] = field(default_factory=list)
    images: int = 0
    used: InUse = field(default_factory=InUse)
    partial: list[str] = field(default_factory=list)  # images with some variants not stored


def check_images(
    store: ImageStore, sizes: Mapping[Digest, int], lost: Mapping[Digest, str]
) -> ImageScan:
    """Walk every image record. `sizes` holds the blobs that verified; `lost` says, for each
    corrupt blob, what became of it ("is corrupt", "was corrupt and is removed").

    A manifest missing from an index is a variant that was never pulled, unless it is lost;
    a config or layer missing under a present manifest is always a problem (as `tag` refuses).
    """
    try:
        records = store.records()
    except PolybuildError as exc:
        problem = Problem(
            "image",
            str(store.root / "images.json"),
            f"the image list cannot be read: {exc}",
            advice="restore it from a backup, or move it away to start with no image names",
        )
        return ImageScan([problem])
    scan = ImageScan(images=len(records))
    for record in records:
        _ImageWalk(record, sizes, lost, store, scan).run()
    return scan


class _ImageWalk:
    def __init__(
        self,
        record: ImageRecord,
        sizes: Mapping[Digest, int],
        lost: Mapping[Digest, str],
        store: ImageStore,
        scan: ImageScan,
    ) -> None:
        self.name = record.name.familiar() if record.name else str(record.target.digest)
        self.record = record
        self.sizes = sizes
        self.lost = lost
        self.content = store.content
        self.scan = scan
        self.found = 0

    def report(self, detail: str) -> None:
        self.found += 1
        self.scan.problems.append(
            Problem(
                "image",
                self.name,
                detail,
                advice=f"pull, load or rebuild it (polybuild rmi {self.name} removes it)",
            )
        )

    def run(self) -> None:
        target = self.record.target
        what = "index" if mt.is_index(target.media_type) else "manifest"
        if self.unusable(target, what, required=True):
            return
        if mt.is_index(target.media_type):
            self.index(target)
        elif mt.is_manifest(target.media_type):
            self.manifest(target, attestation=False)
        else:
            self.report(f"{target.digest} is a {target.media_type}, not an image")

    def unusable(
        self, descriptor: Descriptor, what: str, where: str = "", *, required: bool
    ) -> bool:
        """True (and reported when it matters) unless the blob is present, whole, right-sized."""
        digest = descriptor.digest
        name = f"{what} {digest}{where}"
        if digest in self.lost:
            self.report(f"{name} {self.lost[digest]}")
            return True
        size = self.sizes.get(digest)
        if size is None:
            if required:
                self.report(f"{name} is missing")
            return True
        self.scan.used.blobs.add(digest)
        if size != descriptor.size:
            self.report(f"{name} has {size} bytes, its descriptor says {descriptor.size}")
            return True
        return False

    def load(
        self,
        descriptor: Descriptor,
        what: str,
        where: str,
        parse: Callable[[bytes, str], Stored[T]],
    ) -> T | None:
        """The document read and parsed, or None (reported) when it cannot be."""
        try:
            raw = read_document(self.content, descriptor)
        except PolybuildError as exc:
            self.report(f"{what} {descriptor.digest} cannot be read: {exc}")
            return None
        try:
            return parse(raw, descriptor.media_type).value
        except PolybuildError as exc:
            self.report(f"{what} {descriptor.digest}{where} does not parse: {exc}")
            return None

    def index(self, descriptor: Descriptor) -> None:
        index = self.load(descriptor, "index", "", parse_index)
        if index is None:
            return
        before, present, absent = self.found, 0, False
        for entry in index.manifests:
            where = f" ({format_platform(entry.platform)})" if entry.platform else ""
            if not (mt.is_index(entry.media_type) or mt.is_manifest(entry.media_type)):
                continue  # an artifact the image carries along; not ours to judge
            if self.unusable(entry, "manifest", where, required=False):
                absent = absent or entry.digest not in self.lost
                continue
            present += 1
            if mt.is_index(entry.media_type):
                self.index(entry)
            else:
                self.manifest(entry, attestation=is_attestation(entry))
        if present == 0 and self.found == before:
            self.report(f"none of the {len(index.manifests)} manifests of its index is stored")
        elif absent and self.name not in self.scan.partial:
            self.scan.partial.append(self.name)

    def manifest(self, descriptor: Descriptor, *, attestation: bool) -> None:
        where = f" ({format_platform(descriptor.platform)})" if descriptor.platform else ""
        manifest = self.load(descriptor, "manifest", where, parse_manifest)
        if manifest is None:
            return
        runnable = not attestation and mt.is_config(manifest.config.media_type)
        config_ok = not self.unusable(manifest.config, "config", where, required=True)
        whole = []
        for layer in manifest.layers:
            foreign = mt.is_nondistributable(layer.media_type) or bool(layer.urls)
            whole.append(not self.unusable(layer, "layer", where, required=not foreign))
            if runnable and not mt.is_layer(layer.media_type):
                self.report(f"layer {layer.digest}{where} has the unknown type {layer.media_type}")
        if not (runnable and config_ok):
            return
        config = self.load(manifest.config, "config", where, parse_config)
        if config is None:
            return
        self.scan.used.diff_ids.update(str(d) for d in config.diff_ids)
        for layer, diff_id, ok in zip(manifest.layers, config.diff_ids, whole, strict=False):
            if ok:
                self.scan.used.layers[diff_id.hex] = layer.digest
        if len(config.diff_ids) != len(manifest.layers):
            self.report(
                f"manifest {descriptor.digest}{where} has {len(manifest.layers)} layers but its "
                f"config lists {len(config.diff_ids)} diff IDs"
            )
