"""Assembling the exported image: index shape, Docker media types, compression, annotations."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import BinaryIO, cast

from polybuild.exporters import ImageOptions, assemble, parse_output
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.manifest import parse_index, parse_manifest
from polybuild.image.platform_image import ExportSource
from polybuild.layers import Compression, open_decompressed
from polybuild.platforms import Platform
from tests.exporters.conftest import PLATFORMS, make_source


def test_oci_index_lists_each_platform_with_its_platform(source: ExportSource) -> None:
    image = assemble(source, ImageOptions())
    assert image.index is not None
    assert image.target.media_type == mt.OCI_INDEX
    index = parse_index(source.content.get(image.digest)).value
    assert [e.platform for e in index.manifests] == list(PLATFORMS)
    assert all(e.media_type == mt.OCI_MANIFEST for e in index.manifests)
    # nothing changed, so the build's own manifests are used byte for byte
    assert [e.digest for e in index.manifests] == [p.manifest.digest for p in source.platforms]
    assert image.config_digest is None


def test_docker_media_types_rewrite_manifests_but_not_blobs(source: ExportSource) -> None:
    image = assemble(source, parse_output("type=docker,dest=x.tar").image)
    assert image.docker_media_types
    raw = source.content.get(image.digest)
    index = parse_index(raw).value
    assert index.media_type == mt.DOCKER_MANIFEST_LIST
    assert json.loads(raw)["mediaType"] == mt.DOCKER_MANIFEST_LIST
    for entry, original in zip(index.manifests, source.platforms, strict=True):
        assert entry.media_type == mt.DOCKER_MANIFEST
        assert entry.digest != original.manifest.digest  # bytes changed, stored anew
        manifest = parse_manifest(source.content.get(entry.digest), entry.media_type).value
        assert manifest.config.media_type == mt.DOCKER_CONFIG
        assert manifest.config.digest == original.config.digest
        assert {layer.media_type for layer in manifest.layers} == {mt.DOCKER_LAYER_GZIP}
        assert [layer.digest for layer in manifest.layers] == [
            layer.digest for layer in original.manifest.value.layers
        ]


def test_same_input_same_digest_in_another_store(tmp_path: Path, source: ExportSource) -> None:
    other = make_source(ContentStore(tmp_path / "other"))
    for options in (
        ImageOptions(),
        ImageOptions(oci_mediatypes=False),
        ImageOptions(compression=Compression.ZSTD, force_compression=True),
    ):
        first = assemble(source, options)
        assert assemble(source, options).digest == first.digest
        assert assemble(other, options).digest == first.digest


def test_forced_recompression_keeps_diff_ids(source: ExportSource) -> None:
    options = ImageOptions(compression=Compression.ZSTD, force_compression=True)
    image = assemble(source, options)
    for new, old in zip(image.platforms, source.platforms, strict=True):
        assert new.config.digest == old.config.digest
        layers = new.manifest.value.layers
        assert {layer.media_type for layer in layers} == {mt.OCI_LAYER_ZSTD}
        for layer, diff_id in zip(layers, new.config.value.diff_ids, strict=True):
            blob = source.content.get(layer.digest)
            assert blob.startswith(b"\x28\xb5\x2f\xfd")
            tar, compression = open_decompressed(cast(BinaryIO, io.BytesIO(blob)))
            while tar.read(1 << 20):
                pass
            assert compression is Compression.ZSTD and tar.diff_id() == str(diff_id)


def test_compression_without_force_only_compresses_plain_layers(store_root: Path) -> None:
    gz = make_source(ContentStore(store_root / "gz"))
    kept = assemble(gz, ImageOptions(compression=Compression.ZSTD))
    assert kept.digest == assemble(gz, ImageOptions()).digest
    plain = make_source(ContentStore(store_root / "plain"), compression=Compression.NONE)
    image = assemble(plain, ImageOptions(compression=Compression.GZIP))
    layer_types = {d.media_type for p in image.platforms for d in p.manifest.value.layers}
    assert layer_types == {mt.OCI_LAYER_GZIP}


def test_zstd_forces_oci_media_types_with_a_warning(source: ExportSource) -> None:
    image = assemble(
        source,
        ImageOptions(oci_mediatypes=False, compression=Compression.ZSTD, force_compression=True),
    )
    assert not image.docker_media_types
    assert image.target.media_type == mt.OCI_INDEX
    assert any("zstd" in w for w in image.warnings)


def test_annotations_go_where_asked(source: ExportSource) -> None:
    spec = parse_output(
        "type=oci,annotation.org.example.all=1,annotation-manifest[linux/arm64].only=arm,"
        "annotation-index.idx=2,annotation-manifest-descriptor.desc=3,"
        "annotation-index-descriptor.top=4"
    )
    image = assemble(source, spec.image)
    index = parse_index(source.content.get(image.digest)).value
    assert index.annotations == {"idx": "2"}
    assert image.target.annotations == {"top": "4"}
    for entry in index.manifests:
        assert entry.annotations == {"desc": "3"}
        manifest = parse_manifest(source.content.get(entry.digest)).value
        expected = {"org.example.all": "1"}
        if entry.platform == Platform("linux", "arm64"):
            expected["only"] = "arm"
        assert manifest.annotations == expected


def test_one_platform_gives_the_manifest_itself(single: ExportSource) -> None:
    image = assemble(single, ImageOptions())
    assert image.index is None
    assert image.target.media_type == mt.OCI_MANIFEST
    assert image.digest == single.platforms[0].manifest.digest
    assert image.config_digest == single.platforms[0].config.digest
