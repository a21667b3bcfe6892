"""Choosing the manifest for a platform from an index, by containerd's preference rules."""

from __future__ import annotations

from dataclasses import dataclass

from polybuild.errors import ImageError, ImageNotFoundError, NoMatchingPlatformError
from polybuild.image import mediatypes as mt
from polybuild.image.config import ImageConfig, parse_config
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Manifest, Stored, is_attestation, parse_index, parse_manifest
from polybuild.image.walk import BlobSource, read_document
from polybuild.platforms import Platform, default_platform, format_platform, only

__all__ = [
    "NoMatchingPlatformError",
    "Selected",
    "find_child",
    "load_selected",
    "platform_manifests",
    "select_manifest",
]


@dataclass(frozen=True, slots=True)
class Selected:
    """A platform's manifest with its descriptor (as listed in the index) and its config."""

    descriptor: Descriptor
    manifest: Stored[Manifest]
    config: Stored[ImageConfig]

    @property
    def platform(self) -> Platform:
        return self.descriptor.platform or self.config.value.platform


def _manifest_platform(source: BlobSource, descriptor: Descriptor) -> Platform | None:
    """The platform an index entry declares, else the one its config says (if present)."""
    if descriptor.platform is not None:
        return descriptor.platform
    if not source.exists(descriptor.digest):
        return None
    manifest = parse_manifest(read_document(source, descriptor), descriptor.media_type).value
    if not mt.is_config(manifest.config.media_type) or not source.exists(manifest.config.digest):
        return None
    return parse_config(read_document(source, manifest.config)).value.platform


def platform_manifests(source: BlobSource, target: Descriptor) -> list[tuple[Descriptor, Platform]]:
    """The runnable manifests under `target` with their platforms, in index order.

    Nested indexes are flattened; attestation manifests and entries whose platform cannot
    be known are skipped.
    """
    if mt.is_manifest(target.media_type):
        platform = _manifest_platform(source, target)
        return [(target, platform)] if platform else []
    if not mt.is_index(target.media_type):
        raise ImageError(f"{target.digest} is a {target.media_type}, not an image")
    index = parse_index(read_document(source, target), target.media_type).value
    found: list[tuple[Descriptor, Platform]] = []
    for entry in index.manifests:
        if is_attestation(entry):
            continue
        if mt.is_index(entry.media_type):
            if source.exists(entry.digest):
                found.extend(platform_manifests(source, entry))
        elif mt.is_manifest(entry.media_type):
            platform = _manifest_platform(source, entry)
            if platform is not None and platform.os != "unknown":
                found.append((entry, platform))
    return found


def select_manifest(
    source: BlobSource, target: Descriptor, platform: Platform | None = None
) -> Selected:
    """The best manifest for `platform` (default: this machine's) under `target`.

    Like containerd's `images.Manifest` with `platforms.Only`: the platform itself is best,
    then what it runs compatibly (arm64 -> arm/v8 .. arm/v5, amd64 -> 386); among equals
    the first in the index wins. NoMatchingPlatformError names the platforms available.
    """
    wanted = platform or default_platform()
    matcher = only(wanted)
    candidates = platform_manifests(source, target)
    best: tuple[int, Descriptor] | None = None
    for descriptor, candidate in candidates:
        rank = matcher.rank(candidate)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, descriptor)
    if best is None:
        available = ", ".join(sorted({format_platform(p) for _, p in candidates})) or "none"
        raise NoMatchingPlatformError(
            f"image {target.digest} has no manifest for platform {format_platform(wanted)} "
            f"(available: {available})",
            hint="choose one of the available platforms with --platform",
        )
    return load_selected(source, best[1], format_platform(wanted))


def load_selected(source: BlobSource, descriptor: Descriptor, what: str = "") -> Selected:
    """The manifest `descriptor` points at, with its config, read and parsed."""
    if not source.exists(descriptor.digest):
        raise ImageNotFoundError(
            f"the {what + ' ' if what else ''}manifest {descriptor.digest} is not in the store",
            hint="pull the image again for this platform",
        )
    manifest = parse_manifest(read_document(source, descriptor), descriptor.media_type)
    config = parse_config(
        read_document(source, manifest.value.config), manifest.value.config.media_type
    )
    return Selected(descriptor, manifest, config)


def find_child(source: BlobSource, target: Descriptor, digest: Digest) -> Descriptor | None:
    """The manifest with `digest` inside image `target` (itself, or an entry of its index)."""
    if target.digest == digest:
        return target
    return next((d for d, _ in platform_manifests(source, target) if d.digest == digest), None)
