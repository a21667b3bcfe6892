"""Inline cache (`--cache-to type=inline`): each platform image's config carries, under
`moby.buildkit.cache.v0`, the base64 of a cache config whose records are the steps that made
that image's layers (mode=min, as BuildKit), so `--cache-from IMAGE` finds them with the
image; the layers are the image's own, fetched from its repository when a hit needs them."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence

from polybuild.cache.config import MAX_CONFIG, Record, decode, encode
from polybuild.errors import ImageError
from polybuild.image.descriptor import Descriptor
from polybuild.image.layer import Layer


def inline_value(records: Mapping[str, tuple[Layer, ...]], result: Sequence[Layer]) -> str:
    """The config field for an image made of `result`: every record whose chain is a prefix
    of it."""
    blobs = [str(x.blob) for x in result]
    chosen = [
        Record(key, chain)
        for key, chain in records.items()
        if chain and [str(x.blob) for x in chain] == blobs[: len(chain)]
    ]
    return base64.b64encode(encode(chosen)).decode() if chosen else ""


def inline_records(value: str, layers: Sequence[Descriptor]) -> dict[str, Record]:
    """The records an image config's inline cache holds (none when it is unreadable)."""
    if not value or len(value) > MAX_CONFIG * 4 // 3 + 4:
        return {}
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return {}
    try:
        return decode(raw, {str(d.digest): d for d in layers})
    except ImageError:  # an unreadable cache is no cache
        return {}


__all__ = ["inline_records", "inline_value"]
