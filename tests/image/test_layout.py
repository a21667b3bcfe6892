"""OCI image layouts: deterministic tars, verified and confined reads, directories."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from polybuild.errors import DigestMismatchError, ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.layout import LayoutDir, entry_name, export_dir, import_dir, name_annotations
from polybuild.image.layout_tar import read_tar, write_tar
from polybuild.image.reference import parse
from polybuild.image.testing import write_index
from polybuild.platforms import Platform

PLATFORMS = [Platform("linux", "amd64"), Platform("linux", "arm64"), Platform("linux", "arm", "v7")]


@pytest.fixture
def source(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "source")


def _named_entry(source: ContentStore, name: str = "app:1"):  # type: ignore[no-untyped-def]
    target = write_index(source, PLATFORMS)
    return target.with_annotations(name_annotations(parse(name)))


def _tar_bytes(source: ContentStore, entries) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    write_tar(out, source, entries)
    return out.getvalue()


def test_tar_is_deterministic_and_complete(source: ContentStore) -> None:
    entry = _named_entry(source)
    first, second = _tar_bytes(source, [entry]), _tar_bytes(source, [entry])
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names[:3] == ["oci-layout", "index.json", "blobs"]
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
        blobs = {n.rsplit("/", 1)[1] for n in names if n.startswith("blobs/sha256/")}
        assert blobs == {d.hex for d in source}  # 1 index + 3 x (manifest, config, layer)
        assert len(blobs) == 10
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert index["manifests"][0]["annotations"] == {
        mt.ANNOTATION_IMAGE_NAME: "docker.io/library/app:1",
        mt.ANNOTATION_REF_NAME: "1",
    }


def test_read_tar_verifies_and_stores_every_blob(source: ContentStore, tmp_path: Path) -> None:
    entry = _named_entry(source)
    target = ContentStore(tmp_path / "target")
    index = read_tar(io.BytesIO(_tar_bytes(source, [entry])), target)
    assert set(target) == set(source)
    assert entry_name(index.value.manifests[0]) == parse("app:1")


def test_gzip_compressed_tar_is_read(source: ContentStore, tmp_path: Path) -> None:
    data = gzip.compress(_tar_bytes(source, [_named_entry(source)]))
    target = ContentStore(tmp_path / "target")
    read_tar(io.BytesIO(data), target)
    assert set(target) == set(source)


def _rewrite(data: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """A copy of a tar with each (info, bytes) passed through `change`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            content = src.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            for info, body in change(member, content):
                info.size = len(body)
                dst.addfile(info, io.BytesIO(body) if info.isfile() else None)
    return out.getvalue()


def test_tampered_blob_is_refused_and_not_stored(source: ContentStore, tmp_path: Path) -> None:
    data = _tar_bytes(source, [_named_entry(source)])

    def flip_layer(member, content):  # type: ignore[no-untyped-def]
        if member.name.startswith("blobs/") and content.startswith(b"etc/os"):
            content = content.replace(b"linux/amd64", b"linux/AMD64")
        yield member, content

    target = ContentStore(tmp_path / "target")
    with pytest.raises(DigestMismatchError, match="does not match"):
        read_tar(io.BytesIO(_rewrite(data, flip_layer)), target)
    assert all(target.get(d) for d in target)  # whatever got in is intact
    assert len(list(target)) < 10


@pytest.mark.parametrize("evil", ["../escape", "/abs/path", "blobs/../../x"])
def test_paths_outside_the_layout_are_refused(
    source: ContentStore, tmp_path: Path, evil: str
) -> None:
    data = _tar_bytes(source, [_named_entry(source)])

    def add_evil(member, content):  # type: ignore[no-untyped-def]
        yield member, content
        if member.name == "oci-layout":
            yield tarfile.TarInfo(evil), b"pwned"

    with pytest.raises(ImageError, match="unsafe path"):
        read_tar(io.BytesIO(_rewrite(data, add_evil)), ContentStore(tmp_path / "target"))
    assert not (tmp_path / "escape").exists()


def test_symlinks_are_refused(source: ContentStore, tmp_path: Path) -> None:
    data = _tar_bytes(source, [_named_entry(source)])

    def add_link(member, content):  # type: ignore[no-untyped-def]
        yield member, content
        if member.name == "oci-layout":
            link = tarfile.TarInfo("blobs/sha256/link")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            yield link, b""

    with pytest.raises(ImageError, match="not a regular file"):
        read_tar(io.BytesIO(_rewrite(data, add_link)), ContentStore(tmp_path / "target"))


def test_missing_blob_is_reported(source: ContentStore, tmp_path: Path) -> None:
    entry = _named_entry(source)
    data = _tar_bytes(source, [entry])
    victim = next(d for d in source if source.get(d).startswith(b"etc/os"))

    def drop(member, content):  # type: ignore[no-untyped-def]
        if member.name != f"blobs/sha256/{victim.hex}":
            yield member, content

    with pytest.raises(ImageError, match=f"incomplete: missing {victim}"):
        read_tar(io.BytesIO(_rewrite(data, drop)), ContentStore(tmp_path / "target"))


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a valid tar"):
        read_tar(io.BytesIO(b"garbage" * 100), ContentStore(tmp_path))
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    with pytest.raises(ImageError, match="no oci-layout") as info:
        read_tar(io.BytesIO(empty.getvalue()), ContentStore(tmp_path))
    assert info.value.hint


def test_directory_layout_round_trip(source: ContentStore, tmp_path: Path) -> None:
    entry = _named_entry(source)
    export_dir(tmp_path / "layout", source, [entry])
    layout = LayoutDir(tmp_path / "layout")
    layout.check()
    assert json.loads((tmp_path / "layout" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }
    assert not (tmp_path / "layout" / ".ingest").exists()
    assert layout.index().value.manifests == (entry,)
    # exporting the same name again replaces its entry instead of adding one
    export_dir(tmp_path / "layout", source, [entry])
    assert len(layout.index().value.manifests) == 1

    target = ContentStore(tmp_path / "target")
    import_dir(tmp_path / "layout", target)
    assert set(target) == set(source)


def test_entry_names() -> None:
    from polybuild.image.descriptor import Descriptor
    from polybuild.image.digest import Digest

    base = Descriptor(mt.OCI_INDEX, Digest.of(b""), 0)
    assert entry_name(base) is None
    assert entry_name(base.with_annotations({mt.ANNOTATION_REF_NAME: "latest"})) is None
    full = base.with_annotations({mt.ANNOTATION_REF_NAME: "ghcr.io/o/a:2"})
    assert str(entry_name(full)) == "ghcr.io/o/a:2"
    both = base.with_annotations(
        {mt.ANNOTATION_REF_NAME: "2", mt.ANNOTATION_IMAGE_NAME: "busybox:2"}
    )
    assert str(entry_name(both)) == "docker.io/library/busybox:2"
