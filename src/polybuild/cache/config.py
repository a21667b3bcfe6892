"""A cache's records in BuildKit's cache config (`application/vnd.buildkit.cacheconfig.v0`).

The config lists layers (a blob, its parent layer's index, and annotations: media type,
uncompressed digest, size) and records (a cache key and the index of the top layer of the
chain it produced). polybuild's record keys are its own solver's keys (op definition, input
keys, content checksums: the same on every machine); the chain of a record is its top layer
and that layer's parents. A BuildKit importer reads such a config and finds no key it knows;
polybuild reads BuildKit's configs the same way (their keys never match ours).

Everything read is hostile: sizes and counts are bounded, indexes checked, parent links may
not loop, and a record that cannot be read is dropped (that step just runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from polybuild.errors import ImageError
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer

MEDIA_TYPE = "application/vnd.buildkit.cacheconfig.v0"
MAX_CONFIG = 32 << 20
MAX_ENTRIES = 200_000
MAX_DEPTH = 500  # layers in one chain (overlayfs stops far below this)
# Times are not part of what a cache means; a fixed one keeps the config's digest the same
# for the same records (BuildKit requires the field).
CREATED_AT = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Record:
    """One cache record: the key of a step and the layer chain (bottom first) it produced."""

    key: str
    chain: tuple[Layer, ...]


def encode(records: Iterable[Record]) -> bytes:
    """The cache config of `records` (shared chain prefixes written once), as compact JSON."""
    layers: list[dict[str, object]] = []
    index: dict[tuple[int, str], int] = {}  # (parent index, blob) -> layer index
    out_records: list[dict[str, object]] = []
    for record in sorted(records, key=lambda r: r.key):
        if not record.chain:
            continue
        parent = -1
        for layer in record.chain:
            spot = (parent, str(layer.blob))
            if spot not in index:
                entry: dict[str, object] = {
                    "blob": str(layer.blob),
                    "annotations": {
                        "mediaType": layer.descriptor.media_type,
                        "diffID": str(layer.diff_id),
                        "size": layer.descriptor.size,
                        "createdAt": CREATED_AT,
                    },
                }
                if parent != 0:  # Go's omitempty: a missing parent reads as 0
                    entry["parent"] = parent
                index[spot] = len(layers)
                layers.append(entry)
            parent = index[spot]
        out_records.append(
            {"digest": record.key, "layers": [{"layer": parent, "createdAt": CREATED_AT}]}
        )
    document = {"layers": layers, "records": out_records}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _layer(entry: Mapping[str, object], known: Mapping[str, Descriptor]) -> tuple[Layer, int]:
    """One config layer (and its parent index); ValueError/ImageError when unreadable."""
    blob = Digest.parse(str(entry["blob"]))
    parent = entry.get("parent", 0)
    if not isinstance(parent, int) or isinstance(parent, bool):
        raise ValueError("parent is not an index")
    notes = entry.get("annotations") or {}
    if not isinstance(notes, Mapping):
        raise ValueError("annotations are not an object")
    descriptor = known.get(str(blob))
    media_type = str(notes.get("mediaType") or (descriptor.media_type if descriptor else ""))
    size = notes.get("size", descriptor.size if descriptor else None)
    if not media_type or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"layer {blob} has no media type or size")
    diff_id = Digest.parse(str(notes["diffID"]))
    return Layer(Descriptor(media_type, blob, size), diff_id), parent


def decode(raw: bytes, known: Mapping[str, Descriptor] | None = None) -> dict[str, Record]:
    """The readable records of a cache config by key. `known` are the descriptors the cache
    manifest lists (they fill in what a layer's annotations leave out). ImageError when the
    config itself is not one; unreadable layers or records are skipped."""
    if len(raw) > MAX_CONFIG:
        raise ImageError("the cache config is too large")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ImageError(f"the cache config is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ImageError("the cache config is not a JSON object")
    entries = document.get("layers") or []
    wanted = document.get("records") or []
    if not isinstance(entries, list) or not isinstance(wanted, list):
        raise ImageError("the cache config's layers or records are not lists")
    if len(entries) > MAX_ENTRIES or len(wanted) > MAX_ENTRIES:
        raise ImageError("the cache config lists too many layers or records")
    layers: list[tuple[Layer, int] | None] = []
    for entry in entries:
        try:
            layers.append(_layer(entry, known or {}) if isinstance(entry, dict) else None)
        except (KeyError, ValueError, TypeError, ImageError):
            layers.append(None)
    records: dict[str, Record] = {}
    for item in wanted:
        try:
            key = str(item["digest"])
            top = item["layers"][0]["layer"]
            chain = _chain(layers, top)
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if chain and key.startswith("sha256:"):
            records[key] = Record(key, chain)
    return records


def _chain(layers: list[tuple[Layer, int] | None], top: object) -> tuple[Layer, ...]:
    """The chain ending in layer `top`, bottom first (ValueError for a bad index or loop)."""
    found: list[Layer] = []
    at = top
    while at != -1:
        if not isinstance(at, int) or isinstance(at, bool) or not 0 <= at < len(layers):
            raise ValueError(f"no layer {at!r}")
        entry = layers[at]
        if entry is None or len(found) >= MAX_DEPTH:
            raise ValueError("unreadable layer or chain too deep")
        found.append(entry[0])
        at = entry[1]
    return tuple(reversed(found))


def merge(*sources: Mapping[str, Record]) -> dict[str, Record]:
    """Records of every source by key; a later source wins for the same key."""
    merged: dict[str, Record] = {}
    for source in sources:
        merged.update(source)
    return merged


__all__ = ["CREATED_AT", "MEDIA_TYPE", "Record", "decode", "encode", "merge"]
