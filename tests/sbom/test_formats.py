"""The binary formats parsed by hand, on bytes built from their documented layouts: Go build
info in both formats (pointers into a segment found without sections; inline varint strings
in a .go.buildinfo section), RPM header blobs, and hostile variants of each."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polybuild.sbom import ScanLimits, scan_rootfs
from polybuild.sbom.golang import BUILDINFO_MAGIC, BuildInfo, packages, read_buildinfo
from polybuild.sbom.rpmheader import HeaderFormatError, parse_header
from tests.sbom.roots import write

SENTINEL_START = bytes(range(16))
SENTINEL_END = bytes(range(16, 32))
MODULES = (
    "path\texample.com/tool\n"
    "mod\texample.com/tool\tv0.3.0\th1:abc=\n"
    "dep\tgolang.org/x/sys\tv0.1.0\th1:def=\n"
    "dep\tgithub.com/old/name\tv1.0.0\th1:ghi=\n"
    "=>\tgithub.com/new/name\tv1.1.0\th1:jkl=\n"
    "build\t-compiler=gc\n"
)
BASE = 0x400000
DATA_OFFSET = 0x1000


def elf_with_segment(data: bytes, *, wide: bool, order: str) -> bytes:
    """An ELF file with one writable PT_LOAD segment holding `data` at file offset 0x1000,
    virtual address BASE + 0x1000, and no section headers."""
    if wide:
        ident = b"\x7fELF" + bytes([2, 1 if order == "<" else 2, 1]) + bytes(9)
        header = ident + struct.pack(
            order + "HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0
        )
        program = struct.pack(
            order + "IIQQQQQQ", 1, 6, DATA_OFFSET, BASE + DATA_OFFSET, 0, len(data), len(data), 16
        )
    else:
        ident = b"\x7fELF" + bytes([1, 1 if order == "<" else 2, 1]) + bytes(9)
        header = ident + struct.pack(
            order + "HHIIIIIHHHHHH", 2, 8, 1, 0, 52, 0, 0, 52, 32, 1, 40, 0, 0
        )
        program = struct.pack(
            order + "IIIIIIII", 1, DATA_OFFSET, BASE + DATA_OFFSET, 0, len(data), len(data), 6, 16
        )
    prefix = header + program
    return prefix + bytes(DATA_OFFSET - len(prefix)) + data


def pointer_blob(version: str, modules: str, *, at: int, pointer: int, order: str) -> bytes:
    """Go before 1.18: two pointers to string headers, the strings after them (the blob
    loaded at virtual address `at`)."""
    word = "Q" if pointer == 8 else "I"
    wrapped = SENTINEL_START + modules.encode() + SENTINEL_END
    headers_at = at + 32
    version_at = headers_at + 4 * pointer
    modules_at = version_at + len(version)
    head = BUILDINFO_MAGIC + bytes([pointer, 1 if order == ">" else 0])
    head += struct.pack(f"{order}{word}{word}", headers_at, headers_at + 2 * pointer)
    head = head.ljust(32, b"\0")
    strings = struct.pack(
        f"{order}{word}{word}{word}{word}", version_at, len(version), modules_at, len(wrapped)
    )
    return head + strings + version.encode() + wrapped


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def inline_blob(version: str, modules: str) -> bytes:
    wrapped = SENTINEL_START + modules.encode() + SENTINEL_END
    head = (BUILDINFO_MAGIC + bytes([8, 2])).ljust(32, b"\0")
    return head + uvarint(len(version)) + version.encode() + uvarint(len(wrapped)) + wrapped


def read(tmp_path: Path, content: bytes) -> BuildInfo | None:
    path = write(tmp_path / "exe", content, 0o755)
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_buildinfo(fd, len(content), ScanLimits())
    finally:
        os.close(fd)


@pytest.mark.parametrize(("pointer", "order"), [(8, "<"), (4, ">"), (4, "<")])
def test_pointer_format_found_by_searching_the_writable_segment(
    tmp_path: Path, pointer: int, order: str
) -> None:
    at = BASE + DATA_OFFSET + 48
    data = bytes(48) + pointer_blob("go1.16.15", MODULES, at=at, pointer=pointer, order=order)
    content = elf_with_segment(data, wide=pointer == 8, order=order)
    assert read(tmp_path, content) == BuildInfo("go1.16.15", MODULES)


def test_inline_format_and_the_packages_it_names(tmp_path: Path) -> None:
    content = elf_with_segment(bytes(16) + inline_blob("go1.22.1", MODULES), wide=True, order="<")
    info = read(tmp_path, content)
    assert info == BuildInfo("go1.22.1", MODULES)
    found = {(p.name, p.version, p.purl) for p in packages(info, "/usr/bin/tool")}
    assert found == {
        ("example.com/tool", "v0.3.0", "pkg:golang/example.com/tool@v0.3.0"),
        ("golang.org/x/sys", "v0.1.0", "pkg:golang/golang.org/x/sys@v0.1.0"),
        ("github.com/new/name", "v1.1.0", "pkg:golang/github.com/new/name@v1.1.0"),  # replaced
        ("stdlib", "go1.22.1", "pkg:golang/stdlib@1.22.1"),
    }


def test_magic_off_the_16_byte_grid_is_ignored(tmp_path: Path) -> None:
    content = elf_with_segment(bytes(8) + inline_blob("go1.22.1", MODULES), wide=True, order="<")
    assert read(tmp_path, content) is None


@pytest.mark.parametrize(
    "blob",
    [
        # a pointer outside every segment
        (BUILDINFO_MAGIC + bytes([8, 0])) + struct.pack("<QQ", 0xDEAD0000, 0xDEAD0010),
        # an inline length far past the data
        (BUILDINFO_MAGIC + bytes([8, 2])).ljust(32, b"\0") + uvarint(1 << 40) + b"go",
        # a varint that never ends
        (BUILDINFO_MAGIC + bytes([8, 2])).ljust(32, b"\0") + b"\xff" * 20,
        # an unknown pointer size without the inline flag
        (BUILDINFO_MAGIC + bytes([3, 0])).ljust(64, b"\0"),
    ],
)
def test_broken_build_info_is_none(tmp_path: Path, blob: bytes) -> None:
    assert read(tmp_path, elf_with_segment(blob.ljust(64, b"\0"), wide=True, order="<")) is None


@given(st.binary(max_size=4096))
def test_any_bytes_after_an_elf_header_never_raise(tail: bytes) -> None:
    content = elf_with_segment(BUILDINFO_MAGIC + tail, wide=True, order="<")
    fd = os.memfd_create("exe")
    try:
        os.write(fd, content)
        read_buildinfo(fd, len(content), ScanLimits())
    finally:
        os.close(fd)


def header(entries: list[tuple[int, int, bytes, int]]) -> bytes:
    """An RPM header blob from (tag, type, data, count) entries."""
    index, store = b"", b""
    for tag, kind, data, count in entries:
        if kind == 4:
            store += bytes(-len(store) % 4)
        index += struct.pack(">IIII", tag, kind, len(store), count)
        store += data
    return struct.pack(">II", len(entries), len(store)) + index + store


def test_rpm_header_fields() -> None:
    blob = header(
        [
            (1000, 6, b"zlib\0", 1),
            (1001, 6, b"1.3\0", 1),
            (1002, 6, b"1.el9\0", 1),
            (1022, 6, b"x86_64\0", 1),
            (1014, 6, b"Zlib\0", 1),
            (1003, 4, struct.pack(">I", 1), 1),
            (1117, 8, b"libz.so.1\0zlib.h\0", 2),
            (1118, 8, b"/usr/lib64/\0/usr/include/\0", 2),
            (1116, 4, struct.pack(">II", 0, 1), 2),
        ]
    )
    parsed = parse_header(blob)
    assert (parsed.name, parsed.version, parsed.release, parsed.epoch) == (
        "zlib",
        "1.3",
        "1.el9",
        1,
    )
    assert parsed.files == ("/usr/lib64/libz.so.1", "/usr/include/zlib.h")


@pytest.mark.parametrize(
    "blob",
    [
        b"\0\0\0",
        struct.pack(">II", 1 << 20, 0),  # more entries than bytes
        header([(1000, 6, b"no terminator", 1)]),
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 6, 99, 1) + b"abc\0",  # offset out
        header([(1116, 4, struct.pack(">I", 0), 1000)]),  # count past the data
        header([(1117, 8, b"a\0", 1), (1118, 8, b"/\0", 1), (1116, 4, struct.pack(">I", 5), 1)]),
    ],
)
def test_malformed_rpm_headers(blob: bytes) -> None:
    with pytest.raises(HeaderFormatError):
        parse_header(blob)


@given(st.binary(max_size=512))
def test_any_rpm_header_bytes_raise_only_format_errors(blob: bytes) -> None:
    with contextlib.suppress(HeaderFormatError):
        parse_header(blob)


def test_hostile_rpmdb_query_is_bounded(tmp_path: Path) -> None:
    """Packages as a view that never ends: the progress handler stops it."""
    root = tmp_path / "root"
    db = root / "var/lib/rpm/rpmdb.sqlite"
    db.parent.mkdir(parents=True)
    connection = sqlite3.connect(db)
    connection.execute(
        "CREATE VIEW Packages AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n)"
        " SELECT zeroblob(8) AS blob FROM n WHERE x < 0"
    )
    connection.commit()
    connection.close()
    started = time.monotonic()
    inventory = scan_rootfs(root)
    assert time.monotonic() - started < 30
    assert inventory.packages == ()
    assert inventory.warnings == ("/var/lib/rpm/rpmdb.sqlite: interrupted",)
