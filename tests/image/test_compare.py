"""image.compare: why two builds of one platform differ, down to the first differing file."""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from polybuild.errors import BlobNotFoundError, ImageError
from polybuild.image import mediatypes as mt
from polybuild.image._wire import ContainerConfigJSON
from polybuild.image.compare import (
    Difference,
    EntryDifference,
    compare_images,
    render_difference,
)
from polybuild.image.compare_fields import FieldDifference, first_field_difference
from polybuild.image.config import ContainerConfig, History, ImageConfig
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.image.platform_image import PlatformImage
from polybuild.image.testing import layer_tar
from polybuild.image.writer import store_platform_image
from polybuild.layers import Compression, LayerFormat, directory_layer
from polybuild.platforms import parse

AMD64 = parse("linux/amd64")
EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z
OLD = 1_600_000_000  # 2020-09-13T12:26:40Z, before EPOCH: not clamped
CONFIG = ImageConfig.empty(AMD64)


@dataclass(frozen=True)
class Chain:
    layers: tuple[Layer, ...]


def make_tree(root: Path) -> Path:
    """A small tree with fixed times: a directory, a config file, a script and a symlink."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "app.conf").write_text("port = 8080\n")
    (root / "run.sh").write_text("#!/bin/sh\nexec app\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("etc/app.conf", root / "link")
    for path in (root / "etc" / "app.conf", root / "run.sh", root / "etc", root):
        os.utime(path, (OLD, OLD))
    os.utime(root / "link", (OLD, OLD), follow_symlinks=False)
    return root


def store_layer(content: ContentStore, tree: Path, compression: Compression) -> Layer:
    """`tree` as a layer blob written by polybuild's own layer writer into `content`."""
    with content.writer() as blob:
        layer = directory_layer(
            tree, blob, LayerFormat(compression=compression, source_date_epoch=EPOCH)
        )
    assert content.exists(layer.blob)
    return layer


def build(
    content: ContentStore,
    trees: Sequence[Path],
    *,
    compression: Compression = Compression.GZIP,
    config: ImageConfig = CONFIG,
    epoch: int = EPOCH,
) -> PlatformImage:
    """An image with one layer per tree, as the build stores it."""
    layers = tuple(store_layer(content, tree, compression) for tree in trees)
    history = tuple(History(created_by=f"COPY {tree.name} /") for tree in trees)
    return store_platform_image(
        content, replace(config, history=history), Chain(layers), AMD64, epoch
    )


def image_of_blobs(content: ContentStore, blobs: Sequence[tuple[bytes, Digest]]) -> PlatformImage:
    """An image over the given layer blobs and diff-ids, whatever the blobs hold."""
    layers = tuple(
        Layer(Descriptor(mt.OCI_LAYER_GZIP, content.put(blob), len(blob)), diff_id)
        for blob, diff_id in blobs
    )
    return store_platform_image(content, CONFIG, Chain(layers), AMD64, EPOCH)


@pytest.fixture
def content(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


def two_trees(tmp_path: Path, change: Callable[[Path], None]) -> tuple[Path, Path]:
    first = make_tree(tmp_path / "first" / "app")
    second = make_tree(tmp_path / "second" / "app")
    change(second)
    return first, second


def layer_difference(
    content: ContentStore, tmp_path: Path, change: Callable[[Path], None], **options: Compression
) -> Difference:
    first, second = two_trees(tmp_path, change)
    difference = compare_images(
        content, build(content, [first], **options), build(content, [second], **options)
    )
    assert difference is not None
    assert difference.layer is not None and difference.layer.entry is not None
    return difference


def test_identical_builds_are_no_difference(content: ContentStore, tmp_path: Path) -> None:
    first, second = two_trees(tmp_path, lambda tree: None)
    assert compare_images(content, build(content, [first]), build(content, [second])) is None


@pytest.mark.parametrize("compression", list(Compression))
def test_a_file_with_other_content_of_the_same_size_is_named(
    content: ContentStore, tmp_path: Path, compression: Compression
) -> None:
    def change(tree: Path) -> None:
        (tree / "etc" / "app.conf").write_text("port = 9090\n")
        os.utime(tree / "etc" / "app.conf", (OLD, OLD))

    difference = layer_difference(content, tmp_path, change, compression=compression)
    assert difference.layer is not None and difference.layer.entry is not None
    entry = difference.layer.entry
    assert (entry.path, entry.field, entry.detail) == ("etc/app.conf", "content", "from byte 7")
    assert entry.first == "sha256:" + hashlib.sha256(b"port = 8080\n").hexdigest()
    assert entry.second == "sha256:" + hashlib.sha256(b"port = 9090\n").hexdigest()
    assert difference.layer.index == 0
    assert difference.layer.first_diff_id != difference.layer.second_diff_id
    # The config names the layer's diff-id, the first field it differs in.
    assert difference.config is not None and difference.config.field == "rootfs.diff_ids[0]"
    assert difference.manifest is None


def test_a_file_with_another_mtime_is_named_with_both_times(
    content: ContentStore, tmp_path: Path
) -> None:
    difference = layer_difference(
        content, tmp_path, lambda tree: os.utime(tree / "run.sh", (OLD + 100, OLD + 100))
    )
    assert difference.layer is not None
    assert difference.layer.entry == EntryDifference(
        "run.sh", "mtime", "2020-09-13T12:26:40Z", "2020-09-13T12:28:20Z"
    )


def test_a_file_with_another_mode_is_named(content: ContentStore, tmp_path: Path) -> None:
    difference = layer_difference(content, tmp_path, lambda tree: (tree / "run.sh").chmod(0o700))
    assert difference.layer is not None and difference.layer.entry is not None
    entry = difference.layer.entry
    assert (entry.path, entry.field, entry.first, entry.second) == (
        "run.sh",
        "mode",
        "0755",
        "0700",
    )


def test_another_size_and_another_link_target_are_header_fields(
    content: ContentStore, tmp_path: Path
) -> None:
    def longer(tree: Path) -> None:
        (tree / "etc" / "app.conf").write_text("port = 80800\n")
        os.utime(tree / "etc" / "app.conf", (OLD, OLD))

    entry = layer_difference(content, tmp_path / "size", longer).layer.entry  # type: ignore[union-attr]
    assert entry is not None and (entry.path, entry.field) == ("etc/app.conf", "size")
    assert (entry.first, entry.second) == ("12", "13")

    def relink(tree: Path) -> None:
        (tree / "link").unlink()
        os.symlink("run.sh", tree / "link")
        os.utime(tree / "link", (OLD, OLD), follow_symlinks=False)

    entry = layer_difference(content, tmp_path / "link", relink).layer.entry  # type: ignore[union-attr]
    assert entry is not None
    assert (entry.path, entry.field, entry.first, entry.second) == (
        "link",
        "link target",
        "etc/app.conf",
        "run.sh",
    )


def test_an_xattr_only_one_build_set_is_named(content: ContentStore, tmp_path: Path) -> None:
    difference = layer_difference(
        content, tmp_path, lambda tree: os.setxattr(tree / "run.sh", "user.note", b"\xffx")
    )
    entry = difference.layer.entry  # type: ignore[union-attr]
    assert entry is not None
    assert (entry.path, entry.field, entry.first, entry.second) == (
        "run.sh",
        "xattr user.note",
        "absent",
        "b'\\xffx'",
    )


def test_a_path_in_one_layer_only_is_named_either_way(
    content: ContentStore, tmp_path: Path
) -> None:
    def add(tree: Path) -> None:
        # Sorts after etc/ and its children, before run.sh: depth-first order, not by path.
        (tree / "etc-extra").write_text("x")

    difference = layer_difference(content, tmp_path / "add", add)
    entry = difference.layer.entry  # type: ignore[union-attr]
    assert entry is not None and (entry.path, entry.field) == ("etc-extra", "presence")
    assert (entry.first, entry.second) == ("absent", "present")
    assert "etc-extra: only in the second image's layer" in render_difference(difference)

    def remove(tree: Path) -> None:
        (tree / "run.sh").unlink()  # the last entry: the second tar ends first

    difference = layer_difference(content, tmp_path / "remove", remove)
    entry = difference.layer.entry  # type: ignore[union-attr]
    assert entry is not None and (entry.path, entry.first, entry.second) == (
        "run.sh",
        "present",
        "absent",
    )


def test_a_large_file_is_compared_in_chunks_and_the_first_differing_byte_found(
    content: ContentStore, tmp_path: Path
) -> None:
    data = bytes(range(256)) * (3 * 4096 + 7)  # about 3 MiB, not a multiple of the chunk
    at = 2 * (1 << 20) + 12345

    def write(tree: Path, payload: bytes) -> None:
        (tree / "big").write_bytes(payload)
        os.utime(tree / "big", (OLD, OLD))

    first, second = two_trees(tmp_path, lambda tree: None)
    write(first, data)
    write(second, data[:at] + b"\0" + data[at + 1 :])
    difference = compare_images(content, build(content, [first]), build(content, [second]))
    assert difference is not None and difference.layer is not None
    entry = difference.layer.entry
    assert entry is not None and (entry.path, entry.field) == ("big", "content")
    assert entry.detail == f"from byte {at}"
    assert entry.first == "sha256:" + hashlib.sha256(data).hexdigest()


def test_the_first_differing_layer_is_the_one_reported(
    content: ContentStore, tmp_path: Path
) -> None:
    base = make_tree(tmp_path / "base")
    first, second = two_trees(tmp_path, lambda tree: (tree / "run.sh").chmod(0o750))
    difference = compare_images(
        content, build(content, [base, first]), build(content, [base, second])
    )
    assert difference is not None and difference.layer is not None
    assert difference.layer.index == 1
    assert difference.layer.entry is not None and difference.layer.entry.path == "run.sh"
    assert difference.config is not None and difference.config.field == "rootfs.diff_ids[1]"


def test_other_layer_counts_are_reported(content: ContentStore, tmp_path: Path) -> None:
    base = make_tree(tmp_path / "base")
    extra = make_tree(tmp_path / "extra")
    (extra / "more").write_text("more")
    difference = compare_images(content, build(content, [base]), build(content, [base, extra]))
    assert difference is not None
    assert difference.layer_counts == (1, 2)
    assert difference.layer is None  # the layers both have are the same
    assert difference.config is not None and difference.config.field == "history[1]"
    assert difference.config.first == "absent"
    assert "  layers: 1 vs 2" in render_difference(difference).splitlines()


def test_the_same_tar_compressed_otherwise_is_not_a_file_difference(
    content: ContentStore, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "app")
    difference = compare_images(
        content,
        build(content, [tree], compression=Compression.GZIP),
        build(content, [tree], compression=Compression.ZSTD),
    )
    assert difference is not None and difference.layer is not None
    assert difference.layer.entry is None
    assert difference.layer.first_diff_id == difference.layer.second_diff_id
    assert difference.config is None  # the diff-ids are the config's: the same bytes
    assert difference.manifest is not None
    assert difference.manifest.field == "layers[0].mediaType"
    assert difference.manifest.second == f'"{mt.OCI_LAYER_ZSTD}"'
    assert "compressed to other bytes" in render_difference(difference)


def test_a_config_differing_in_created_names_it_and_both_times(
    content: ContentStore, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "app")  # its times are older than both epochs: same layer
    first = build(content, [tree], epoch=EPOCH)
    second = build(content, [tree], epoch=EPOCH + 60)
    difference = compare_images(content, first, second)
    assert difference is not None
    assert difference.config is not None
    assert (difference.config.field, difference.config.first, difference.config.second) == (
        "created",
        '"2023-11-14T22:13:20Z"',
        '"2023-11-14T22:14:20Z"',
    )
    assert difference.layer is None and difference.manifest is None
    assert render_difference(difference) == (
        f"linux/amd64: manifest {first.manifest.digest} vs {second.manifest.digest}\n"
        '  config: created differs ("2023-11-14T22:13:20Z" vs "2023-11-14T22:14:20Z")'
    )


def test_config_fields_are_named_as_in_json(content: ContentStore, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "app")

    def with_container(**fields: object) -> ImageConfig:
        return replace(CONFIG, config=ContainerConfig(**fields))  # type: ignore[arg-type]

    cases = [
        ({"env": ("A=1", "B=2")}, {"env": ("A=1", "B=3")}, "config.Env[1]", '"B=2"', '"B=3"'),
        (
            {"labels": {"org.example.v": "1"}},
            {"labels": {"org.example.v": "2"}},
            'config.Labels["org.example.v"]',
            '"1"',
            '"2"',
        ),
        ({"cmd": ("sh",)}, {}, "config.Cmd", '["sh"]', "null"),
    ]
    for first, second, field, value_a, value_b in cases:
        difference = compare_images(
            content,
            build(content, [tree], config=with_container(**first)),
            build(content, [tree], config=with_container(**second)),
        )
        assert difference is not None and difference.config is not None
        assert (difference.config.field, difference.config.first, difference.config.second) == (
            field,
            value_a,
            value_b,
        )


def test_a_history_entry_is_named_by_its_index_and_field(
    content: ContentStore, tmp_path: Path
) -> None:
    # The same files under another directory name: the same layer, another COPY in history.
    first = build(content, [make_tree(tmp_path / "a" / "app")])
    second = build(content, [make_tree(tmp_path / "b" / "src")])
    difference = compare_images(content, first, second)
    assert difference is not None and difference.layer is None
    assert difference.config == FieldDifference(
        "history[0].created_by", '"COPY app /"', '"COPY src /"'
    )


def test_first_field_difference_of_equal_values_is_none() -> None:
    config = ContainerConfigJSON(env=["A=1"], labels={"a.b": "1"})
    assert first_field_difference(config, config) is None
    other = ContainerConfigJSON(env=["A=1"], labels={"a.b": "1", "c": "2"})
    assert first_field_difference(config, other) == FieldDifference("Labels.c", "absent", '"2"')


def test_a_missing_layer_blob_is_a_blob_not_found_error_naming_it(
    content: ContentStore, tmp_path: Path
) -> None:
    first, second = two_trees(tmp_path, lambda tree: (tree / "run.sh").chmod(0o700))
    image_a, image_b = build(content, [first]), build(content, [second])
    missing = image_b.manifest.value.layers[0].digest
    assert content.delete(missing)
    with pytest.raises(BlobNotFoundError, match=f"second image's layer {missing}"):
        compare_images(content, image_a, image_b)


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"not a tar at all, " * 100, id="garbage"),
        pytest.param(gzip.compress(layer_tar({"a": b"x" * 5000}))[:-40], id="truncated-gzip"),
        pytest.param(layer_tar({"a": b"x" * 5000})[:1024], id="truncated-tar"),
    ],
)
def test_a_layer_that_is_not_a_tar_is_an_image_error_naming_it(
    content: ContentStore, blob: bytes
) -> None:
    good = layer_tar({"a": b"y" * 5000})
    first = image_of_blobs(content, [(good, Digest.of(good))])
    second = image_of_blobs(content, [(blob, Digest.of(b"claimed"))])
    digest = Digest.of(blob)
    with pytest.raises(ImageError, match=f"second image's layer {digest} is not a valid tar"):
        compare_images(content, first, second)


def test_a_config_listing_fewer_diff_ids_than_layers_is_an_image_error(
    content: ContentStore,
) -> None:
    tar = layer_tar({"a": b"a"})
    first = image_of_blobs(content, [(tar, Digest.of(tar))])
    second = image_of_blobs(content, [(tar, Digest.of(tar))] * 2)
    config = replace(second.config.value, diff_ids=second.config.value.diff_ids[:1])
    broken = replace(second, config=replace(second.config, value=config))
    with pytest.raises(ImageError, match="has 2 layers but 1 diff-ids"):
        compare_images(content, first, broken)


def test_the_report_escapes_and_shortens_what_a_hostile_layer_names(
    content: ContentStore,
) -> None:
    name = "evil\x1b[2J\nname" + "x" * 5000
    first_tar, second_tar = layer_tar({name: b"a"}), layer_tar({name: b"b"})
    difference = compare_images(
        content,
        image_of_blobs(content, [(first_tar, Digest.of(first_tar))]),
        image_of_blobs(content, [(second_tar, Digest.of(second_tar))]),
    )
    assert difference is not None and difference.layer is not None
    assert difference.layer.entry is not None and difference.layer.entry.path == name
    report = render_difference(difference)
    lines = report.splitlines()
    assert "\x1b" not in report and len(lines) == 3  # no line break from the name either
    assert lines[2].startswith("    evil\\x1b[2J\\nnamexxx")
    hashes = (
        f"sha256:{hashlib.sha256(b'a').hexdigest()} vs sha256:{hashlib.sha256(b'b').hexdigest()}"
    )
    assert lines[2].endswith(f"xxx...: content differs from byte 0 ({hashes})")
    assert len(lines[2]) < 4 + 240 + len(hashes) + 40  # the name is cut at 240 characters


def test_the_report_of_a_changed_file(content: ContentStore, tmp_path: Path) -> None:
    def change(tree: Path) -> None:
        (tree / "etc" / "app.conf").write_text("port = 9090\n")
        os.utime(tree / "etc" / "app.conf", (OLD, OLD))

    difference = layer_difference(content, tmp_path, change)
    layer = difference.layer
    assert layer is not None
    old, new = (hashlib.sha256(text).hexdigest() for text in (b"port = 8080\n", b"port = 9090\n"))
    # The config differs first in this layer's diff-id, which the layer line shows already.
    assert render_difference(difference).splitlines() == [
        f"linux/amd64: manifest {difference.first} vs {difference.second}",
        f"  layers[0]: diff-id {layer.first_diff_id} vs {layer.second_diff_id}",
        f"    etc/app.conf: content differs from byte 7 (sha256:{old} vs sha256:{new})",
    ]
