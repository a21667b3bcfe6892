"""The cache config in BuildKit's v0 format: records and their layer chains round-trip with
shared prefixes written once, a Go-style omitted parent reads as 0, and hostile configs
(loops, bad indexes, wrong types, huge) lose only what cannot be read."""

from __future__ import annotations

import json

import pytest

from polybuild.cache.config import MAX_DEPTH, Record, decode, encode
from polybuild.cache.manifest import make_manifest, read_manifest
from polybuild.errors import ImageError
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def layer(n: int) -> Layer:
    return Layer(Descriptor(GZIP, Digest.of(b"blob%d" % n), 100 + n), Digest.of(b"diff%d" % n))


def key(n: int) -> str:
    return str(Digest.of(b"key%d" % n))


def test_records_round_trip_and_share_their_prefix() -> None:
    records = [
        Record(key(1), (layer(0), layer(1))),
        Record(key(2), (layer(0), layer(1), layer(2))),
        Record(key(3), (layer(0), layer(3))),
    ]
    raw = encode(records)
    assert decode(raw) == {r.key: r for r in records}
    document = json.loads(raw)
    assert len(document["layers"]) == 4  # layer 0 once, though three chains start with it
    assert encode(reversed(records)) == raw  # the same records give the same bytes


def test_a_missing_parent_reads_as_zero_as_go_writes_it() -> None:
    raw = encode([Record(key(1), (layer(0), layer(1)))])
    document = json.loads(raw)
    child = next(x for x in document["layers"] if x["blob"] == str(layer(1).blob))
    assert "parent" not in child  # its parent is layer 0: Go's omitempty drops it
    assert decode(raw)[key(1)].chain == (layer(0), layer(1))


def test_sizes_and_media_types_may_come_from_the_manifest() -> None:
    document = {
        "layers": [{"blob": str(layer(0).blob), "parent": -1,
                    "annotations": {"diffID": str(layer(0).diff_id)}}],
        "records": [{"digest": key(1), "layers": [{"layer": 0}]}],
    }  # fmt: skip
    raw = json.dumps(document).encode()
    assert decode(raw) == {}  # no size or media type anywhere: unreadable
    known = {str(layer(0).blob): layer(0).descriptor}
    assert decode(raw, known)[key(1)].chain == (layer(0),)


@pytest.mark.parametrize(
    "records",
    [
        [{"digest": key(1), "layers": [{"layer": 5}]}],  # no such layer
        [{"digest": key(1), "layers": [{"layer": True}]}],
        [{"digest": key(1), "layers": []}],
        [{"digest": "not-a-key", "layers": [{"layer": 0}]}],
        [{"digest": key(1), "layers": [{"layer": 1}]}],  # a loop 1 -> 2 -> 1
        ["nonsense"],
    ],
)
def test_unreadable_records_are_dropped_and_the_rest_kept(records: list[object]) -> None:
    good = json.loads(encode([Record(key(9), (layer(0),))]))
    loop = [
        {"blob": str(layer(1).blob), "parent": 2, "annotations": {
            "mediaType": GZIP, "diffID": str(layer(1).diff_id), "size": 1}},
        {"blob": str(layer(2).blob), "parent": 1, "annotations": {
            "mediaType": GZIP, "diffID": str(layer(2).diff_id), "size": 1}},
    ]  # fmt: skip
    document = {"layers": good["layers"] + loop, "records": good["records"] + records}
    assert set(decode(json.dumps(document).encode())) == {key(9)}


@pytest.mark.parametrize("raw", [b"[]", b"{", b'{"layers": 3}', b" " * (33 << 20)])
def test_what_is_not_a_cache_config_is_an_image_error(raw: bytes) -> None:
    with pytest.raises(ImageError):
        decode(raw)


def test_a_chain_deeper_than_any_build_is_refused() -> None:
    chain = tuple(layer(n) for n in range(MAX_DEPTH + 1))
    assert decode(encode([Record(key(1), chain)])) == {}


@pytest.mark.parametrize("image_manifest", [True, False])
def test_the_cache_manifest_names_its_config_and_layers(image_manifest: bool) -> None:
    config = encode([Record(key(1), (layer(0), layer(1)))])
    descriptor, document = make_manifest(
        config, [layer(0), layer(1)], image_manifest=image_manifest
    )
    artifact = read_manifest(document.raw, document.media_type)
    assert artifact.config == descriptor
    assert [d.digest for d in artifact.layers] == [layer(0).blob, layer(1).blob]
    assert artifact.layers[0].annotations["containerd.io/uncompressed"] == str(layer(0).diff_id)


def test_an_image_is_not_a_cache() -> None:
    _, document = make_manifest(b"{}", [layer(0)])
    raw = document.raw.replace(b"application/vnd.buildkit.cacheconfig.v0",
                               b"application/vnd.oci.image.config.v1+json")  # fmt: skip
    with pytest.raises(ImageError, match="not a build cache"):
        read_manifest(raw, None)


def test_an_inline_cache_holds_the_records_of_the_image_it_is_in() -> None:
    from polybuild.cache.inline import inline_records, inline_value

    records = {
        key(1): (layer(0), layer(1)),
        key(2): (layer(0), layer(1), layer(2)),
        key(3): (layer(0), layer(3)),  # another stage: not this image's
    }
    value = inline_value(records, (layer(0), layer(1), layer(2)))
    found = inline_records(value, [layer(n).descriptor for n in range(3)])
    assert {k: r.chain for k, r in found.items()} == {k: records[k] for k in (key(1), key(2))}
    assert inline_records("not base64!", []) == {}
    assert inline_records("e30=", []) == {}  # "{}": a config with nothing in it
    assert inline_value(records, (layer(5),)) == ""


def test_an_image_config_keeps_its_inline_cache_where_buildkit_puts_it() -> None:
    from polybuild.image.config import ImageConfig, encode_config, parse_config

    stored = encode_config(ImageConfig("amd64", "linux", inline_cache="e30="))
    assert b'"history"' not in stored.raw
    assert b',"moby.buildkit.cache.v0":"e30=","os":"linux"' in stored.raw
    assert parse_config(stored.raw).value.inline_cache == "e30="
