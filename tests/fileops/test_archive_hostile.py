"""Hostile local archives in ADD: bounded memory, disk and time, and errors naming the archive."""

from __future__ import annotations

import gzip
import lzma
import os
import struct
import tarfile
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from polybuild.fileops import CopyResult, FileOpError, copy_files
from tests.conftest import import_busybox, require_root, run_cli
from tests.fileops.trees import make_tree
from tests.layers.trees import (
    end_of_archive,
    file_size_limit,
    pad_block,
    pax_header,
    raw_header,
    sparse_member,
)

MIB = 1 << 20
# No test here writes more; the old code wrote sparse files and forged sizes out in full.
FILE_SIZE_LIMIT = 64 * MIB
FIRST = raw_header("first", size=3) + pad_block(b"abc")


@dataclass(frozen=True, slots=True)
class Arena:
    """A build context holding evil.tar, a destination root, and a host dir beside them."""

    src: Path
    dest: Path
    host: Path

    def add(self, archive: bytes) -> CopyResult:
        (self.src / "evil.tar").write_bytes(archive)
        return copy_files(self.src, self.dest, ["evil.tar"], "/x/", is_add=True)


def _outside(arena: Arena) -> tuple[list[str], bytes, list[str]]:
    parent = arena.dest.parent
    return sorted(os.listdir(parent)), (arena.host / "victim").read_bytes(), os.listdir(arena.host)


@pytest.fixture
def arena(tmp_path: Path) -> Iterator[Arena]:
    made = Arena(
        make_tree(tmp_path / "src", {}),
        make_tree(tmp_path / "dest", {}),
        make_tree(tmp_path / "host", {"victim": "precious"}),
    )
    before = _outside(made)
    with file_size_limit(FILE_SIZE_LIMIT):
        yield made
    assert _outside(made) == before  # nothing was written beside the destination root
    for dirpath, _, filenames in os.walk(made.dest):
        for name in filenames:  # pytest keeps old runs' files: never a regression's zeros
            os.unlink(os.path.join(dirpath, name))


def _zstd(chunks: Iterable[bytes]) -> bytes:
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    return b"".join([*(compressor.compress(c) for c in chunks), compressor.flush()])


def _repeat(unit: bytes, count: int) -> Iterator[bytes]:
    """`unit` * count, in pieces of about 4 MiB, so a bomb is never whole in memory."""
    per_piece = max(1, 4 * MIB // len(unit))
    while count > 0:
        yield unit * min(per_piece, count)
        count -= per_piece


BOMB = 32 * MIB


def _gnu_sparse_chain() -> Iterator[bytes]:
    """A GNU sparse header whose extension blocks never end."""
    head = bytearray(sparse_member("chain", 10**9, [(0, b"x")], "gnu")[: tarfile.BLOCKSIZE])
    head[482] = 1
    head[148:156] = b" " * 8
    head[148:155] = b"%06o\0" % sum(head)
    extension = bytearray(b"%011o\0%011o\0" % (1, 1) * 21 + bytes(8))
    extension[504] = 1
    yield bytes(head)
    yield from _repeat(bytes(extension), BOMB // tarfile.BLOCKSIZE)


def _pax10_sparse_map() -> Iterator[bytes]:
    records = [("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.realsize", "9")]
    yield pax_header(records)
    yield raw_header("map", size=BOMB)
    yield b"%d\n" % (BOMB // 2)
    yield from _repeat(b"1000000000\n", BOMB // 11)


# Shared with tests/image/test_layout_tar_hostile.py, as is xz_asking_for_a_big_dictionary.
BOMBS: dict[str, Callable[[], Iterator[bytes]]] = {
    "pax-record": lambda: iter([raw_header("pax", tarfile.XHDTYPE, BOMB), *_repeat(b"x", BOMB)]),
    "pax-global": lambda: iter([raw_header("g", tarfile.XGLTYPE, BOMB), *_repeat(b"x", BOMB)]),
    "gnu-longname": lambda: iter(
        [raw_header("L", tarfile.GNUTYPE_LONGNAME, BOMB), *_repeat(b"x", BOMB)]
    ),
    "gnu-sparse-extensions": _gnu_sparse_chain,
    "pax1.0-sparse-map": _pax10_sparse_map,
}


def _peak(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.root
@pytest.mark.timeout(120)
@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_header_bombs_after_the_first_entry_are_errors_with_little_memory(
    arena: Arena, bomb: Callable[[], Iterator[bytes]]
) -> None:
    archive = _zstd([FIRST, *bomb()])
    assert len(archive) < 64 * 1024

    def add() -> None:
        with pytest.raises(FileOpError, match="archive evil.tar is not a valid tar archive"):
            arena.add(archive)

    peak = _peak(add)
    assert peak < 16 * MIB, f"peak {peak // MIB} MiB"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_a_header_bomb_first_makes_no_archive_and_costs_little_memory(
    arena: Arena, bomb: Callable[[], Iterator[bytes]]
) -> None:
    # As BuildKit (Go's archive/tar refuses such headers): a file whose first header does
    # not read is no archive, and ADD copies it as it is.
    archive = _zstd(bomb())
    results: list[CopyResult] = []
    peak = _peak(lambda: results.append(arena.add(archive)))
    assert peak < 16 * MIB, f"peak {peak // MIB} MiB"
    assert results[0].unpacked == ()
    assert (arena.dest / "x" / "evil.tar").read_bytes() == archive


@pytest.mark.root
@pytest.mark.timeout(120)
def test_pax_records_with_long_digit_runs_extract_in_linear_time(arena: Arena) -> None:
    # Python 3.11.7 parses this with a regex that backtracks quadratically (about 13 s
    # here, twice: detection and extraction; hours for 1 MiB): CVE-2024-6232.
    digits = "7" * (64 * 1024)
    archive = pax_header([("comment", digits)]) + raw_header("f", size=1) + pad_block(b"x")
    started = time.monotonic()
    arena.add(archive + end_of_archive())
    assert time.monotonic() - started < 2
    assert (arena.dest / "x" / "f").read_bytes() == b"x"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("name", "kind"), [("./", tarfile.REGTYPE), ("/", b"Z")], ids=["dot", "unknown-type"]
)
def test_forged_sizes_on_a_short_stream_fail_at_once(arena: Arena, name: str, kind: bytes) -> None:
    # An entry that extracts to nothing is never read, so tarfile itself skipped its 10**15
    # bytes, one 10 KiB record at a time past the end of the stream: hours.
    archive = pax_header([("size", str(10**15))]) + raw_header(name, kind) + b"data" * 100
    with pytest.raises(FileOpError, match="archive evil.tar .*unexpected end of data"):
        arena.add(gzip.compress(archive))


def _corrupt_second_header() -> bytes:
    second = bytearray(raw_header("second", size=1))
    second[0:6] = b"forged"  # the checksum no longer matches
    return FIRST + bytes(second) + pad_block(b"y") + end_of_archive()


@pytest.mark.parametrize(
    "archive",
    [_corrupt_second_header(), FIRST + raw_header("second")[:300]],
    ids=["bad-checksum", "truncated"],
)
@pytest.mark.root
def test_a_corrupt_header_after_the_first_entry_is_an_error(arena: Arena, archive: bytes) -> None:
    # tarfile ends the archive there without a word: the rest of it was silently dropped.
    with pytest.raises(FileOpError, match="archive evil.tar .*corrupt entry header"):
        arena.add(archive)


@pytest.mark.root
def test_entries_do_not_accumulate_in_memory(arena: Arena) -> None:
    # tarfile keeps every member (about 2.5 KiB each here) unless we drop them.
    def entries(count: int) -> bytes:
        entry = pax_header([("comment", "c" * 2000)]) + raw_header("d", tarfile.DIRTYPE)
        return entry * count + end_of_archive()

    few_entries, many_entries = entries(200), entries(3200)
    few = _peak(lambda: arena.add(few_entries))
    many = _peak(lambda: arena.add(many_entries))
    assert many - few < MIB, f"{(many - few) // 1024} KiB more for 3000 more entries"


def _data_on_disk(path: Path) -> int:
    return os.stat(path).st_blocks * 512


@pytest.mark.root
@pytest.mark.parametrize("fmt", ["gnu", "pax0.0", "pax0.1", "pax1.0"])
def test_sparse_files_keep_their_holes(arena: Arena, fmt: str) -> None:
    size = FILE_SIZE_LIMIT
    segments = [(0, b"head"), (size // 2 + 5, b"middle"), (size - 3, b"end")]
    result = arena.add(sparse_member("sparse", size, segments, fmt) + end_of_archive())
    assert result.unpacked == ("evil.tar",)
    path = arena.dest / "x" / "sparse"
    assert _data_on_disk(path) <= MIB  # the old code wrote all 64 MiB
    assert path.stat().st_size == size
    with path.open("rb") as f:
        for offset, data in segments:
            f.seek(offset)
            assert f.read(len(data)) == data
        f.seek(4)
        assert f.read(4096) == bytes(4096)


@pytest.mark.root
def test_runs_of_zeros_become_holes(arena: Arena) -> None:
    zeros = 16 * MIB
    archive = _zstd(
        [raw_header("zeros", size=zeros + 4), *_repeat(b"\0", zeros), pad_block(b"tail")]
    )
    arena.add(archive + zstandard.ZstdCompressor().compress(end_of_archive()))
    path = arena.dest / "x" / "zeros"
    assert path.stat().st_size == zeros + 4
    assert _data_on_disk(path) <= MIB
    with path.open("rb") as f:
        f.seek(zeros)
        assert f.read() == b"tail"


HOSTILE_VALUES = {
    "nan-mtime": (pax_header([("mtime", "nan")]) + raw_header("d", tarfile.DIRTYPE), "'d'"),
    "inf-mtime": (pax_header([("mtime", "inf")]) + raw_header("f"), "'f'"),
    "huge-mtime": (pax_header([("mtime", "1e300")]) + raw_header("d", tarfile.DIRTYPE), "'d'"),
    "nul-in-name": (pax_header([("path", "a\0b")]) + raw_header("x"), "'a\\x00b'"),
    "nul-in-link": (
        pax_header([("linkpath", "t\0u")]) + raw_header("l", tarfile.SYMTYPE),
        "'l'",
    ),
    "huge-uid": (pax_header([("uid", str(2**70))]) + raw_header("f"), "'f'"),
    "bad-sparse-map": (
        pax_header([("GNU.sparse.map", "0,5,2,5"), ("GNU.sparse.size", "20")])
        + raw_header("s", size=10)
        + pad_block(b"x" * 10),
        "'s'",
    ),
}


@pytest.mark.root
@pytest.mark.parametrize(("entry", "named"), HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_unrepresentable_values_are_errors_naming_archive_and_entry(
    arena: Arena, entry: bytes, named: str
) -> None:
    # The old code let ValueError and OverflowError out of ADD.
    with pytest.raises(FileOpError) as caught:
        arena.add(FIRST + entry + end_of_archive())
    assert f"archive evil.tar: entry {named}" in str(caught.value)


@pytest.mark.root
def test_long_chains_of_extended_headers_are_an_error(arena: Arena) -> None:
    # tarfile recursed once per header: RecursionError.
    chain = raw_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 0) * 1500
    with pytest.raises(FileOpError, match="archive evil.tar is not a valid tar archive"):
        arena.add(FIRST + chain + raw_header("x") + end_of_archive())


def xz_asking_for_a_big_dictionary(data: bytes) -> bytes:
    """xz data whose block header asks for a 1 GiB dictionary (it was made with 1 MiB)."""
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": MIB}]
    xz = bytearray(lzma.compress(data, format=lzma.FORMAT_XZ, filters=filters))
    header_size = (xz[12] + 1) * 4  # the block header follows the 12-byte stream header
    assert xz[13] == 0 and xz[14:16] == b"\x21\x01"  # no sizes; LZMA2 with 1 byte of props
    xz[16] = 36  # dictionary size 2 << (36 // 2 + 11) = 1 GiB
    crc = zlib.crc32(xz[12 : 12 + header_size - 4])
    xz[12 + header_size - 4 : 12 + header_size] = struct.pack("<I", crc)
    return bytes(xz)


def test_xz_asking_for_more_decoder_memory_than_allowed_is_no_archive(arena: Arena) -> None:
    tar = FIRST + end_of_archive()
    archive = xz_asking_for_a_big_dictionary(tar)
    assert lzma.decompress(archive) == tar  # valid xz: liblzma would allocate 1 GiB for it
    result = arena.add(archive)
    assert result.unpacked == ()
    assert (arena.dest / "x" / "evil.tar").read_bytes() == archive


@pytest.mark.root
@pytest.mark.timeout(300)
def test_build_with_a_corrupt_archive_fails_naming_it(tmp_path: Path) -> None:
    require_root()
    root = tmp_path / "root"
    import_busybox(root, ("amd64",))
    ctx = make_tree(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nADD evil.tar /x/\n"})
    (ctx / "evil.tar").write_bytes(_corrupt_second_header())
    out = tmp_path / "out"
    proc = run_cli(
        root, "build", "--platform", "linux/amd64", "-o", f"type=local,dest={out}", str(ctx)
    )
    assert proc.returncode != 0
    assert "ADD evil.tar /x/" in proc.stderr
    assert (
        "ERROR: ADD evil.tar /x/: archive evil.tar is not a valid tar archive: corrupt entry header"
        in (proc.stderr)
    )
    assert "Traceback" not in proc.stderr
    assert not out.exists()
