"""Sparse files and runs of zeros unpack as holes: disk use follows the data, not the sizes."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from polybuild.layers import UnpackError, unpack_layer
from tests.layers.trees import (
    end_of_archive,
    file_size_limit,
    make_tar,
    member,
    raw_header,
    sparse_member,
)

MIB = 1 << 20
GIB = 1 << 30
FORMATS = ["gnu", "pax0.0", "pax0.1", "pax1.0"]
# Room for the data blocks and file system metadata; the unfixed code used 1 GiB.
DISK_LIMIT = 1 * MIB


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "root"
    target.mkdir()
    yield target
    # pytest keeps the last runs' temporary files: never a regression's 1 GiB of zeros.
    shutil.rmtree(target)


def _data_regions(path: Path) -> Iterator[tuple[int, int]]:
    """(start, end) of every region SEEK_DATA reports; the rest of the file is holes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size, pos = os.fstat(fd).st_size, 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole from pos to the end
                return
            end = os.lseek(fd, start, os.SEEK_HOLE)
            yield start, end
            pos = end
    finally:
        os.close(fd)


def _assert_sparse(path: Path, size: int, segments: list[tuple[int, bytes]]) -> None:
    """Right size, little disk, the segments at their offsets and zeros everywhere else."""
    st = os.stat(path)
    # First, so that code writing the holes out fails here and not on a 1 GiB comparison.
    assert st.st_blocks * 512 <= DISK_LIMIT, f"{st.st_blocks * 512} bytes on disk"
    assert st.st_size == size
    with open(path, "rb") as f:
        for offset, data in segments:
            f.seek(offset)
            assert f.read(len(data)) == data
        for start, end in _data_regions(path):
            f.seek(start)
            expected = bytearray(end - start)
            for offset, data in segments:
                lo, hi = max(offset, start), min(offset + len(data), end)
                if lo < hi:
                    expected[lo - start : hi - start] = data[lo - offset : hi - offset]
            assert f.read(end - start) == expected


def _one_gib_segments() -> list[tuple[int, bytes]]:
    return [
        (0, b"#!head" + bytes(range(256)) * 8),
        (512 * MIB + 123, os.urandom(5000)),
        (GIB - 4096, b"tail" * 1024),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_gib_sparse_file_in_a_small_layer_keeps_its_holes(root: Path, fmt: str) -> None:
    segments = _one_gib_segments()
    tar = sparse_member("big/sparse.img", GIB, segments, fmt, mode=0o640) + end_of_archive()
    blob = gzip.compress(tar)
    assert len(blob) < 16 * 1024
    result = unpack_layer(io.BytesIO(blob), root)
    assert result.entries == 1
    target = root / "big" / "sparse.img"
    _assert_sparse(target, GIB, segments)
    assert os.stat(target).st_mode & 0o777 == 0o640


@pytest.mark.parametrize("fmt", FORMATS)
def test_many_segments_use_gnu_extension_blocks(root: Path, fmt: str) -> None:
    segments = [(i * 3 * MIB + i, bytes([i % 255 + 1]) * (100 + i)) for i in range(60)]
    size = 200 * MIB
    unpack_layer(io.BytesIO(sparse_member("f", size, segments, fmt) + end_of_archive()), root)
    _assert_sparse(root / "f", size, segments)


@pytest.mark.parametrize(
    "args",
    [
        ["--format=gnu"],
        ["--format=posix", "--sparse-version=0.0"],
        ["--format=posix", "--sparse-version=0.1"],
        ["--format=posix", "--sparse-version=1.0"],
    ],
    ids=["gnu", "pax0.0", "pax0.1", "pax1.0"],
)
def test_gnu_tar_sparse_archives_unpack_with_holes(
    tmp_path: Path, root: Path, args: list[str]
) -> None:
    gnu_tar = shutil.which("tar")
    assert gnu_tar is not None
    source = tmp_path / "src"
    source.mkdir()
    segments = _one_gib_segments()
    with open(source / "disk.img", "wb") as f:
        for offset, data in segments:
            os.pwrite(f.fileno(), data, offset)
        f.truncate(GIB)
    tar = subprocess.run(
        [gnu_tar, "--sparse", *args, "-cf", "-", "-C", str(source), "disk.img"],
        check=True,
        capture_output=True,
    ).stdout
    assert len(tar) < 64 * 1024
    unpack_layer(io.BytesIO(tar), root)
    _assert_sparse(root / "disk.img", GIB, segments)


def _zstd_member_of_zeros(name: str, size: int, segments: list[tuple[int, bytes]]) -> bytes:
    """A zstd layer of one regular (not sparse) file: zeros with `segments` written over."""
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    out = [compressor.compress(raw_header(name, size=size))]
    pos = 0
    for offset, data in [*segments, (size, b"")]:
        while pos < offset:
            n = min(8 * MIB, offset - pos)
            out.append(compressor.compress(bytes(n)))
            pos += n
        out.append(compressor.compress(data))
        pos += len(data)
    out.append(compressor.compress(bytes(-size % 512) + end_of_archive()))
    out.append(compressor.flush())
    return b"".join(out)


def test_runs_of_zeros_in_a_regular_file_become_holes(root: Path) -> None:
    size = 256 * MIB
    segments = [(0, b"start"), (100 * MIB + 7, os.urandom(30_000)), (size - 10, b"0123456789")]
    blob = _zstd_member_of_zeros("zeros.bin", size, segments)
    assert len(blob) < 64 * 1024
    unpack_layer(io.BytesIO(blob), root)
    _assert_sparse(root / "zeros.bin", size, segments)


def test_files_without_zero_runs_are_unchanged(root: Path) -> None:
    data = os.urandom(3 * MIB + 17) + bytes(70_000) + b"x"
    unpack_layer(make_tar((member("plain"), data)), root)
    assert (root / "plain").read_bytes() == data


@pytest.mark.parametrize(
    "segments",
    [
        [(100, b"b"), (0, b"a")],
        [(0, b"aaaa"), (2, b"bb")],
        [(990, b"x" * 20)],
    ],
    ids=["unsorted", "overlapping", "past-the-end"],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_invalid_sparse_maps_are_refused(
    root: Path, fmt: str, segments: list[tuple[int, bytes]]
) -> None:
    tar = sparse_member("bad", 1000, segments, fmt) + end_of_archive()
    with pytest.raises(UnpackError, match="'bad'.*sparse map"):
        unpack_layer(io.BytesIO(tar), root)
    assert not (root / "bad").exists()


def test_sparse_map_claiming_more_data_than_stored_is_refused(root: Path) -> None:
    raw = bytearray(sparse_member("short", 10_000, [(0, b"a" * 600)], "gnu"))
    raw[386 + 12 : 386 + 24] = b"%011o\0" % 5000  # the map now wants 5000 bytes
    raw[148:156] = b" " * 8
    raw[148:155] = b"%06o\0" % sum(raw[:512])
    with pytest.raises(UnpackError, match="sparse map needs 5000 bytes"):
        unpack_layer(io.BytesIO(bytes(raw) + end_of_archive()), root)


def test_sparse_size_beyond_the_file_system_is_an_unpack_error(root: Path) -> None:
    tar = sparse_member("huge", 1 << 62, [(0, b"x")], "pax0.1") + end_of_archive()
    with file_size_limit(GIB), pytest.raises(UnpackError, match="'huge'"):
        unpack_layer(io.BytesIO(tar), root)
