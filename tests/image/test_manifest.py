"""Typed manifests, indexes and configs: exact bytes kept, canonical output, clear errors."""

from __future__ import annotations

import json

import pytest

from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.config import ContainerConfig, ImageConfig, encode_config, parse_config
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import (
    Index,
    Manifest,
    encode_index,
    encode_manifest,
    parse_index,
    parse_manifest,
    parse_manifest_or_index,
)
from polybuild.platforms import Platform

CONFIG_DIGEST = Digest.of(b"config")
LAYER_DIGEST = Digest.of(b"layer")


def _manifest() -> Manifest:
    return Manifest(
        config=Descriptor(mt.OCI_CONFIG, CONFIG_DIGEST, 6),
        layers=(Descriptor(mt.OCI_LAYER_GZIP, LAYER_DIGEST, 5),),
    )


def test_new_manifest_is_compact_json_in_go_field_order() -> None:
    stored = encode_manifest(_manifest())
    assert stored.raw == (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
        b'"digest":"' + str(CONFIG_DIGEST).encode() + b'","size":6},'
        b'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",'
        b'"digest":"' + str(LAYER_DIGEST).encode() + b'","size":5}]}'
    )
    assert stored.digest == Digest.of(stored.raw)
    assert parse_manifest(stored.raw).value == stored.value


def test_parsing_keeps_the_exact_bytes_and_their_digest() -> None:
    pretty = json.dumps(json.loads(encode_manifest(_manifest()).raw), indent=3).encode()
    stored = parse_manifest(pretty)
    assert stored.raw == pretty
    assert stored.digest == Digest.of(pretty)
    assert stored.digest != encode_manifest(stored.value).digest
    assert stored.descriptor().size == len(pretty)


def test_index_with_platforms_round_trips() -> None:
    entry = encode_manifest(_manifest()).descriptor(platform=Platform("linux", "arm", "v7"))
    stored = encode_index(Index(manifests=(entry,), annotations={"b": "2", "a": "1"}))
    assert b'"platform":{"architecture":"arm","os":"linux","variant":"v7"}' in stored.raw
    assert stored.raw.endswith(b'"annotations":{"a":"1","b":"2"}}')
    parsed = parse_manifest_or_index(stored.raw)
    assert isinstance(parsed.value, Index)
    assert parsed.value.manifests[0].platform == Platform("linux", "arm", "v7")


def test_docker_manifest_list_without_media_type_hint() -> None:
    raw = encode_index(Index(manifests=(), media_type=mt.DOCKER_MANIFEST_LIST)).raw
    parsed = parse_manifest_or_index(raw)
    assert parsed.media_type == mt.DOCKER_MANIFEST_LIST


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid JSON"),
        (b'{"schemaVersion":"2"}', r"\$\.schemaVersion"),
        (b'{"schemaVersion":2}', "no `config`"),
        (b'{"schemaVersion":1}', "schemaVersion 1"),
        (
            b'{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:12","size":1}}',
            "config descriptor: invalid sha256 digest",
        ),
        (
            b'{"schemaVersion":2,"config":{"mediaType":"x","digest":"'
            + str(CONFIG_DIGEST).encode()
            + b'","size":-1}}',
            "negative size",
        ),
        (b'{"schemaVersion":2,"manifests":[]}', "is an index"),
    ],
)
def test_bad_manifests_raise_image_error_naming_the_problem(raw: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_manifest(raw)


def test_media_type_must_agree_with_descriptor() -> None:
    raw = encode_manifest(_manifest()).raw
    with pytest.raises(ImageError, match="descriptor says"):
        parse_manifest(raw, mt.DOCKER_MANIFEST)
    with pytest.raises(ImageError, match="unexpected media type"):
        parse_index(encode_index(Index(manifests=(), media_type=mt.OCI_MANIFEST)).raw)


def test_schema1_is_refused_with_a_hint() -> None:
    raw = b'{"schemaVersion":1,"mediaType":"' + mt.DOCKER_SCHEMA1.encode() + b'"}'
    with pytest.raises(ImageError, match="schema 1") as info:
        parse_manifest(raw)
    assert info.value.hint


def test_docker_classic_config_with_nulls_parses() -> None:
    raw = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Hostname": "",
                "Env": ["PATH=/bin"],
                "Cmd": None,
                "Entrypoint": None,
                "OnBuild": None,
                "Volumes": {"/data": {}},
                "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
                "Labels": None,
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30_000_000_000},
            },
            "rootfs": {"type": "layers", "diff_ids": [str(LAYER_DIGEST)]},
            "history": [{"created_by": "x", "empty_layer": True}],
            "docker_version": "24.0.0",
        }
    ).encode()
    stored = parse_config(raw, mt.DOCKER_CONFIG)
    config = stored.value
    assert stored.raw == raw and stored.digest == Digest.of(raw)
    assert config.platform == Platform("linux", "amd64")
    assert config.config.cmd == ()
    assert config.config.exposed_ports == ("443/tcp", "80/tcp")
    assert config.config.volumes == ("/data",)
    assert config.config.healthcheck is not None
    assert config.config.healthcheck.interval == 30_000_000_000
    assert config.diff_ids == (LAYER_DIGEST,)
    assert config.history[0].empty_layer


def test_new_config_is_emitted_as_buildkit_does() -> None:
    config = ImageConfig(
        architecture="arm64",
        os="linux",
        config=ContainerConfig(
            env=("PATH=/bin",),
            cmd=("sh",),
            working_dir="/",
            labels={"z": "<&>", "a": "1"},
            args_escaped=True,
        ),
        diff_ids=(LAYER_DIGEST,),
    )
    stored = encode_config(config)
    text = stored.raw.decode()
    # sorted top level, Go struct order inside config, Go's HTML escaping
    assert text.startswith('{"architecture":"arm64","config":{"Env":["PATH=/bin"],"Cmd":["sh"],')
    assert '"Labels":{"a":"1","z":"\\u003c\\u0026\\u003e"},"ArgsEscaped":true}' in text
    assert text.endswith(
        f'"os":"linux","rootfs":{{"type":"layers","diff_ids":["{LAYER_DIGEST}"]}}}}'
    )
    assert parse_config(stored.raw).value == config


def test_config_without_platform_is_an_error() -> None:
    with pytest.raises(ImageError, match="architecture"):
        parse_config(b'{"architecture":"","os":"linux"}')
