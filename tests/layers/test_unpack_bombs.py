"""Bombs in small layers: headers, forged sizes and entry counts cost little memory and time."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from polybuild.errors import ImageError
from polybuild.layers import UnpackError, unpack_layer
from tests.layers.trees import end_of_archive, pad_block, pax_header, raw_header, sparse_member

MIB = 1 << 20


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "root"
    target.mkdir()
    yield target
    shutil.rmtree(target)


def _zstd(*parts: bytes, filler: int = 0, filler_byte: bytes = b"x") -> bytes:
    """`parts` then `filler` repeated bytes, zstd-compressed as a stream (never in memory)."""
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    out = [compressor.compress(part) for part in parts]
    while filler > 0:
        n = min(4 * MIB, filler)
        out.append(compressor.compress(filler_byte * n))
        filler -= n
    out.append(compressor.flush())
    return b"".join(out)


BOMB = 32 * MIB


def _gnu_sparse_chain() -> bytes:
    head = bytearray(sparse_member("chain", 10**9, [(0, b"x")], "gnu")[: tarfile.BLOCKSIZE])
    head[482] = 1
    head[148:156] = b" " * 8
    head[148:155] = b"%06o\0" % sum(head)
    return bytes(head)


def _extension_block() -> bytes:
    block = bytearray(b"%011o\0%011o\0" % (1, 1) * 21 + bytes(8))
    block[504] = 1
    return bytes(block)


BOMBS: dict[str, Callable[[], bytes]] = {
    "pax-record": lambda: _zstd(raw_header("pax", tarfile.XHDTYPE, BOMB), filler=BOMB),
    "pax-global": lambda: _zstd(raw_header("g", tarfile.XGLTYPE, BOMB), filler=BOMB),
    "gnu-longname": lambda: _zstd(raw_header("L", tarfile.GNUTYPE_LONGNAME, BOMB), filler=BOMB),
    "gnu-sparse-extensions": lambda: _zstd(_gnu_sparse_chain(), _extension_block() * (BOMB // 512)),
    "pax1.0-sparse-map": lambda: _zstd(
        pax_header(
            [
                ("GNU.sparse.major", "1"),
                ("GNU.sparse.minor", "0"),
                ("GNU.sparse.realsize", "100"),
            ]
        ),
        raw_header("map", size=BOMB),
        b"%d\n" % (BOMB // 2),
        filler=BOMB // 11,
        filler_byte=b"1000000000\n",
    ),
}


@pytest.mark.parametrize("make", BOMBS.values(), ids=BOMBS.keys())
def test_header_bombs_are_refused_with_little_memory(root: Path, make: Callable[[], bytes]) -> None:
    blob = make()
    assert len(blob) < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ImageError):
            unpack_layer(io.BytesIO(blob), root)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, f"peak {peak // MIB} MiB"


def _whiteout_entries(count: int) -> bytes:
    """`count` whiteouts below a missing directory, so they create nothing; long PAX names."""
    deep = "/".join(c * 200 for c in "defg")
    return b"".join(
        pax_header([("path", f"gone/{deep}/.wh.{i}")]) + raw_header("x") for i in range(count)
    )


def _peak_unpacking(blob: bytes, root: Path) -> int:
    tracemalloc.start()
    try:
        unpack_layer(io.BytesIO(blob), root)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_many_entries_do_not_accumulate_in_memory(root: Path) -> None:
    # tarfile keeps every member (about 2 KiB each here) unless we drop them.
    few = _peak_unpacking(_zstd(_whiteout_entries(200), end_of_archive()), root)
    many = _peak_unpacking(_zstd(_whiteout_entries(3200), end_of_archive()), root)
    assert many - few < MIB, f"{(many - few) // 1024} KiB more for 3000 more entries"


def _short_stream(kind: bytes, name: str) -> bytes:
    """An entry claiming 10**11 bytes of data, then the stream simply ends."""
    return pax_header([("size", str(10**11))]) + raw_header(name, kind) + b"data" * 100


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("kind", "name"),
    [(b"Z", "unknown-type"), (tarfile.REGTYPE, ".wh.whiteout"), (tarfile.REGTYPE, "file")],
    ids=["unknown-type", "whiteout", "regular"],
)
def test_forged_sizes_on_a_short_stream_fail_at_once(root: Path, kind: bytes, name: str) -> None:
    with pytest.raises(ImageError, match="end"):
        unpack_layer(io.BytesIO(gzip.compress(_short_stream(kind, name))), root)


def test_corrupt_header_after_the_first_entry_is_an_error(root: Path) -> None:
    first = raw_header("first", size=3) + pad_block(b"abc")
    second = bytearray(raw_header("second"))
    second[0:6] = b"forged"  # the checksum no longer matches
    with pytest.raises(ImageError, match="corrupt entry header"):
        unpack_layer(io.BytesIO(first + bytes(second) + end_of_archive()), root)
    truncated = first + raw_header("second")[:300]
    with pytest.raises(ImageError, match="corrupt entry header"):
        unpack_layer(io.BytesIO(truncated), root)


def test_long_chains_of_extended_headers_are_an_error(root: Path) -> None:
    chain = raw_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 0) * 1500
    with pytest.raises(ImageError):
        unpack_layer(io.BytesIO(chain + raw_header("x") + end_of_archive()), root)


@pytest.mark.parametrize("value", ["nan", "inf", "1e300"])
def test_unrepresentable_mtimes_are_unpack_errors(root: Path, value: str) -> None:
    tar = pax_header([("mtime", value)]) + raw_header("d", tarfile.DIRTYPE) + end_of_archive()
    with pytest.raises(UnpackError, match="'d'.*modification time"):
        unpack_layer(io.BytesIO(tar), root)


def test_pax_records_with_long_digit_runs_parse_in_linear_time(root: Path) -> None:
    # Python < 3.11.10 parses this with a regex that backtracks quadratically (about 13 s
    # here for 64 KiB; hours for 1 MiB): CVE-2024-6232.
    digits = "7" * (64 * 1024)
    tar = pax_header([("comment", digits)]) + raw_header("f", size=1) + pad_block(b"x")
    started = time.monotonic()
    unpack_layer(io.BytesIO(tar + end_of_archive()), root)
    assert time.monotonic() - started < 2
    assert (root / "f").read_bytes() == b"x"


@pytest.mark.parametrize(
    "data",
    [b"7" * 20_000, b"30 path=no-newline-at-the-end", b"3 x=\n", b"9 novalue\n", b"5 =x\n"],
    ids=["digits", "no-newline", "too-short", "no-equals", "no-keyword"],
)
def test_malformed_pax_records_are_errors(root: Path, data: bytes) -> None:
    tar = raw_header("p", tarfile.XHDTYPE, len(data)) + pad_block(data) + raw_header("f")
    with pytest.raises(ImageError, match="malformed PAX record"):
        unpack_layer(io.BytesIO(tar + end_of_archive()), root)
