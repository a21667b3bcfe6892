"""Hostile image archives for `load`: bounded memory and time, errors naming the archive, and
nothing half-written in the content store."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
import zstandard

from polybuild.errors import ImageError
from polybuild.image.content import ContentStore
from polybuild.image.layout_tar import read_tar, write_tar
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_index
from polybuild.platforms import Platform
from tests.conftest import run_cli
from tests.fileops.test_archive_hostile import BOMBS, xz_asking_for_a_big_dictionary
from tests.layers.trees import (
    end_of_archive,
    file_size_limit,
    pad_block,
    pax_header,
    raw_header,
    sparse_member,
)

MIB = 1 << 20
PLATFORMS = [Platform("linux", "amd64"), Platform("linux", "arm64")]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A valid OCI layout archive of a two-platform image named app:1, without its end."""
    from polybuild.image.layout import name_annotations

    source = ContentStore(tmp_path_factory.mktemp("source"))
    entry = write_index(source, PLATFORMS).with_annotations(name_annotations(parse("app:1")))
    out = io.BytesIO()
    write_tar(out, source, [entry])
    data = out.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.getmembers()
        return data[: tar.offset]  # where the end-of-archive blocks start


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ContentStore]:
    content = ContentStore(tmp_path / "store")
    # The old code wrote sparse blobs out in full: never more than this.
    with file_size_limit(64 * MIB):
        yield content
    # Whatever a failed load leaves is whole and verified; nothing is half-written.
    assert not content.ingest_dir.exists() or os.listdir(content.ingest_dir) == []
    for digest in content:
        content.verify(digest)


def _load(tmp_path: Path, archive: bytes, store: ContentStore) -> None:
    path = tmp_path / "evil.tar"
    path.write_bytes(archive)
    with path.open("rb") as f:
        read_tar(f, store)


def _gzip(chunks: Iterable[bytes]) -> bytes:
    compressor = zlib.compressobj(1, wbits=31)
    return b"".join([*(compressor.compress(c) for c in chunks), compressor.flush()])


def _peak(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_header_bombs_are_errors_with_little_memory(
    tmp_path: Path, layout: bytes, store: ContentStore, bomb: Callable[[], Iterator[bytes]]
) -> None:
    archive = _gzip([layout, *bomb()])
    assert len(archive) < MIB

    def load() -> None:
        with pytest.raises(ImageError, match=f"archive {tmp_path}/evil.tar is not a valid tar"):
            _load(tmp_path, archive, store)

    peak = _peak(load)
    assert peak < 16 * MIB, f"peak {peak // MIB} MiB"


@pytest.mark.timeout(120)
def test_pax_records_with_long_digit_runs_load_in_linear_time(
    tmp_path: Path, layout: bytes, store: ContentStore
) -> None:
    # Python 3.11.7 parses this with a regex that backtracks quadratically (about 13 s
    # here, hours for 1 MiB): CVE-2024-6232.
    extra = pax_header([("comment", "7" * (64 * 1024))]) + raw_header("README", size=1)
    started = time.monotonic()
    _load(tmp_path, layout + extra + pad_block(b"x") + end_of_archive(), store)
    assert time.monotonic() - started < 2


@pytest.mark.timeout(30)
def test_a_forged_size_on_a_short_stream_fails_at_once(
    tmp_path: Path, layout: bytes, store: ContentStore
) -> None:
    # load reads no manifest.json, so tarfile skipped its 10**15 bytes itself, one 10 KiB
    # record at a time past the end of the stream: hours.
    forged = pax_header([("size", str(10**15))]) + raw_header("manifest.json") + b"[]" * 100
    with pytest.raises(ImageError, match=f"archive {tmp_path}/evil.tar .*unexpected end of data"):
        _load(tmp_path, gzip.compress(layout + forged), store)


def _corrupt_header() -> bytes:
    header = bytearray(raw_header("manifest.json", size=2))
    header[0:6] = b"forged"  # the checksum no longer matches
    return bytes(header) + pad_block(b"[]") + end_of_archive()


@pytest.mark.parametrize(
    "tail",
    [_corrupt_header(), raw_header("manifest.json")[:300]],
    ids=["bad-checksum", "truncated-header"],
)
def test_a_corrupt_header_after_a_complete_layout_is_an_error(
    tmp_path: Path, layout: bytes, store: ContentStore, tail: bytes
) -> None:
    # tarfile took it for the end of the archive, so a damaged archive loaded as if whole.
    with pytest.raises(ImageError, match=f"archive {tmp_path}/evil.tar .*corrupt entry header"):
        _load(tmp_path, layout + tail, store)


def test_an_archive_cut_inside_a_blob_stores_no_part_of_it(
    tmp_path: Path, layout: bytes, store: ContentStore
) -> None:
    with tarfile.open(fileobj=io.BytesIO(layout)) as tar:
        biggest = max(tar.getmembers(), key=lambda m: m.size)
    cut = layout[: biggest.offset_data + biggest.size // 2]
    with pytest.raises(ImageError, match=f"archive {tmp_path}/evil.tar .*unexpected end of data"):
        _load(tmp_path, cut, store)
    assert biggest.name.rsplit("/", 1)[1] not in {d.hex for d in store}


def test_entries_do_not_accumulate_in_memory(
    tmp_path: Path, layout: bytes, store: ContentStore
) -> None:
    # tarfile keeps every member (about 2.5 KiB each here) unless we drop them.
    def archive(count: int) -> bytes:
        entry = pax_header([("comment", "c" * 2000)]) + raw_header("extra", tarfile.DIRTYPE)
        return layout + entry * count + end_of_archive()

    few_entries, many_entries = archive(200), archive(3200)
    few = _peak(lambda: _load(tmp_path, few_entries, store))
    many = _peak(lambda: _load(tmp_path, many_entries, store))
    assert many - few < MIB, f"{(many - few) // 1024} KiB more for 3000 more entries"


MALFORMED = {
    "extended-header-chain": raw_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 0) * 1500
    + raw_header("x"),
    "bad-sparse-size": pax_header([("GNU.sparse.size", "many")]) + raw_header("x"),
    "bad-sparse-map": pax_header([("GNU.sparse.map", "0,x")]) + raw_header("x"),
}


@pytest.mark.parametrize("tail", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_headers_are_errors_naming_the_archive(
    tmp_path: Path, layout: bytes, store: ContentStore, tail: bytes
) -> None:
    # The old code let RecursionError and ValueError out of load.
    with pytest.raises(ImageError, match=f"archive {tmp_path}/evil.tar is not a valid tar"):
        _load(tmp_path, layout + tail + end_of_archive(), store)


def test_sparse_blobs_are_refused(tmp_path: Path, layout: bytes, store: ContentStore) -> None:
    # The old code streamed a sparse member's holes into the store as zeros: 1 GiB here,
    # from an archive of a few KiB, before the digest could say it was wrong.
    name = "blobs/sha256/" + "ab" * 32
    blob = sparse_member(name, 1 << 30, [(0, b"x")], "pax0.1")
    with pytest.raises(
        ImageError, match=f"archive {tmp_path}/evil.tar: member .* is a sparse file"
    ):
        _load(tmp_path, layout + blob + end_of_archive(), store)


def test_xz_asking_for_more_decoder_memory_than_allowed_is_refused(
    tmp_path: Path, layout: bytes, store: ContentStore
) -> None:
    archive = xz_asking_for_a_big_dictionary(layout + end_of_archive())
    with pytest.raises(ImageError, match="Memory usage limit"):
        _load(tmp_path, archive, store)


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@pytest.mark.parametrize("compress", COMPRESSORS.values(), ids=COMPRESSORS.keys())
def test_compressed_archives_load(
    tmp_path: Path, layout: bytes, store: ContentStore, compress: Callable[[bytes], bytes]
) -> None:
    # Not hostile: what docker load reads too (zstd is new; tarfile knew the others).
    _load(tmp_path, compress(layout + end_of_archive()), store)
    assert len(list(store)) == 7  # index, and manifest, config and layer for 2 platforms


@pytest.mark.root
@pytest.mark.parametrize("cut", ["corrupt-header", "inside-a-blob"])
def test_load_of_a_damaged_archive_fails_naming_it_and_leaves_check_clean(
    tmp_path: Path, layout: bytes, cut: str
) -> None:
    if cut == "corrupt-header":
        archive = layout + _corrupt_header()
    else:
        with tarfile.open(fileobj=io.BytesIO(layout)) as tar:
            last = tar.getmembers()[-1]
        archive = layout[: last.offset_data + last.size // 2]
    path = tmp_path / "evil.tar"
    path.write_bytes(archive)
    root = tmp_path / "root"
    proc = run_cli(root, "load", "-i", str(path))
    assert proc.returncode != 0
    assert f"ERROR: archive {path} is not a valid tar archive" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert ImageStore(root).records() == []
    check = run_cli(root, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no problems" in check.stdout
