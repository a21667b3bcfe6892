"""Why two builds of one platform's image differ (`build --check-reproducible`): the first
differing field of the config and of the manifest, the layer counts, and the first entry of
the first differing layer; `render_difference` puts it into lines for the user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import msgspec

from polybuild.errors import ImageError
from polybuild.image._wire import ImageConfigJSON, ManifestJSON, decode
from polybuild.image.compare_fields import FieldDifference, first_field_difference
from polybuild.image.compare_layers import ABSENT, EntryDifference, first_entry_difference
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.platform_image import PlatformImage
from polybuild.platforms import Platform

__all__ = [
    "Difference",
    "EntryDifference",
    "FieldDifference",
    "LayerDifference",
    "compare_images",
    "render_difference",
]

T = TypeVar("T")
# Longer names and values are cut in the report (a PAX path may be a megabyte).
_MAX_SHOWN = 240


@dataclass(frozen=True, slots=True)
class LayerDifference:
    """The first layer (by position) whose diff-id or blob differs between the two images.

    `entry` is the first tar entry that differs; None when the diff-ids are equal (the same
    tar, compressed to other bytes) or every entry is equal in every field compared (the
    tars differ only in how they encode them).
    """

    index: int
    first: Descriptor
    second: Descriptor
    first_diff_id: Digest
    second_diff_id: Digest
    entry: EntryDifference | None


@dataclass(frozen=True, slots=True)
class Difference:
    """How two images of `platform` with different manifest digests differ.

    `config` is the first differing config field (None when the configs are the same
    bytes), `manifest` the first differing manifest field besides the digests and sizes of
    its config and layers (media types, annotations), `layer` the first differing layer.
    """

    platform: Platform
    first: Digest
    second: Digest
    config: FieldDifference | None
    manifest: FieldDifference | None
    layer_counts: tuple[int, int]
    layer: LayerDifference | None


def _config_difference(first: PlatformImage, second: PlatformImage) -> FieldDifference | None:
    a, b = first.config, second.config
    if a.digest == b.digest:
        return None
    found = first_field_difference(
        _decode(a.raw, ImageConfigJSON, "image config"),
        _decode(b.raw, ImageConfigJSON, "image config"),
    )
    # Equal in every field we read: they differ in fields we do not know, or in formatting.
    return found or FieldDifference("(bytes)", f"{a.digest}", f"{b.digest}")


def _blank_blobs(manifest: ManifestJSON, keep_layers: int) -> ManifestJSON:
    """`manifest` without the digests and sizes of its config and layers (compared apart)."""
    config = manifest.config and msgspec.structs.replace(manifest.config, digest="", size=0)
    layers = [
        msgspec.structs.replace(layer, digest="", size=0)
        for layer in (manifest.layers or [])[:keep_layers]
    ]
    return msgspec.structs.replace(manifest, config=config, layers=layers)


def _manifest_difference(first: PlatformImage, second: PlatformImage) -> FieldDifference | None:
    a = _decode(first.manifest.raw, ManifestJSON, "image manifest")
    b = _decode(second.manifest.raw, ManifestJSON, "image manifest")
    keep = min(len(a.layers or ()), len(b.layers or ()))
    return first_field_difference(_blank_blobs(a, keep), _blank_blobs(b, keep))


def _decode(raw: bytes, kind: type[T], what: str) -> T:
    try:
        return decode(raw, kind, what)
    except RecursionError:
        raise ImageError(f"invalid {what}: nested too deeply") from None


def _layers(image: PlatformImage, which: str) -> list[tuple[Descriptor, Digest]]:
    layers, diff_ids = image.manifest.value.layers, image.config.value.diff_ids
    if len(layers) != len(diff_ids):
        raise ImageError(
            f"cannot compare images: the {which} image ({image.manifest.digest}) has "
            f"{len(layers)} layers but {len(diff_ids)} diff-ids in its config"
        )
    return list(zip(layers, diff_ids, strict=True))


def _layer_difference(
    content: ContentStore, first: PlatformImage, second: PlatformImage
) -> LayerDifference | None:
    pairs = zip(_layers(first, "first"), _layers(second, "second"), strict=False)
    for index, ((layer_a, diff_a), (layer_b, diff_b)) in enumerate(pairs):
        if diff_a == diff_b and layer_a.digest == layer_b.digest:
            continue
        entry = None if diff_a == diff_b else first_entry_difference(content, layer_a, layer_b)
        return LayerDifference(index, layer_a, layer_b, diff_a, diff_b, entry)
    return None


def compare_images(
    content: ContentStore, first: PlatformImage, second: PlatformImage
) -> Difference | None:
    """None when `first` and `second` have the same manifest digest, else how they differ.

    Layer blobs are read from `content` as streams, only for the first layer whose diff-id
    differs and only as far as its first differing entry. A blob missing from `content` is
    a BlobNotFoundError, a corrupt one a DigestMismatchError, and an image whose layers
    are not tars, or whose manifest and config disagree, an ImageError.
    """
    if first.manifest.digest == second.manifest.digest:
        return None
    return Difference(
        platform=first.platform,
        first=first.manifest.digest,
        second=second.manifest.digest,
        config=_config_difference(first, second),
        manifest=_manifest_difference(first, second),
        layer_counts=(len(first.manifest.value.layers), len(second.manifest.value.layers)),
        layer=_layer_difference(content, first, second),
    )


def _shown(text: str) -> str:
    """`text` from a (possibly hostile) image, safe on a terminal: control and other
    unprintable characters escaped, at most about a line long."""
    safe = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text[: _MAX_SHOWN + 1]
    )
    return safe if len(safe) <= _MAX_SHOWN else f"{safe[: _MAX_SHOWN - 3]}..."


def _field_line(what: str, found: FieldDifference) -> str:
    return (
        f"  {what}: {_shown(found.field)} differs ({_shown(found.first)} vs {_shown(found.second)})"
    )


def _entry_line(entry: EntryDifference) -> str:
    path = _shown(entry.path)
    if entry.field == "presence":
        where = "second" if entry.first == ABSENT else "first"
        return f"    {path}: only in the {where} image's layer"
    detail = f" {entry.detail}" if entry.detail else ""
    return (
        f"    {path}: {_shown(entry.field)} differs{detail} "
        f"({_shown(entry.first)} vs {_shown(entry.second)})"
    )


def _layer_lines(layer: LayerDifference) -> list[str]:
    head = f"  layers[{layer.index}]"
    if layer.first_diff_id == layer.second_diff_id:
        return [
            f"{head}: the same tar (diff-id {layer.first_diff_id}) compressed to other bytes "
            f"({layer.first.digest} vs {layer.second.digest})"
        ]
    lines = [f"{head}: diff-id {layer.first_diff_id} vs {layer.second_diff_id}"]
    if layer.entry is None:
        lines.append(
            "    every entry is equal in type, mode, owner, size, mtime, link target, "
            "xattrs, PAX records and content; the tars encode them differently"
        )
    else:
        lines.append(_entry_line(layer.entry))
    return lines


def render_difference(difference: Difference) -> str:
    """The difference as lines for the user: the platform and both manifest digests, then
    the config, manifest, layer count and layer that differ (no trailing newline). Text
    from the images is escaped and shortened, so a hostile layer cannot drive the terminal.
    """
    lines = [f"{difference.platform}: manifest {difference.first} vs {difference.second}"]
    config, layer = difference.config, difference.layer
    # A config whose first difference is the diff-id of the layer shown says nothing more.
    if config is not None and (layer is None or config.field != f"rootfs.diff_ids[{layer.index}]"):
        lines.append(_field_line("config", config))
    if difference.manifest is not None:
        lines.append(_field_line("manifest", difference.manifest))
    first_count, second_count = difference.layer_counts
    if first_count != second_count:
        lines.append(f"  layers: {first_count} vs {second_count}")
    if layer is not None:
        lines.extend(_layer_lines(layer))
    return "\n".join(lines)
