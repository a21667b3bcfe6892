"""Test helpers for layers: tree snapshots, hostile tar construction and overlay mounts."""

from __future__ import annotations

import hashlib
import io
import os
import resource
import signal
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Node:
    """What we compare about one file system entry."""

    kind: str
    mode: int
    uid: int
    gid: int
    content: str  # sha256 of a regular file, symlink target, or "major,minor" of a device
    xattrs: tuple[tuple[str, bytes], ...]
    mtime: int | None


def _xattrs(path: str) -> tuple[tuple[str, bytes], ...]:
    names = os.listxattr(path, follow_symlinks=False)
    return tuple(
        sorted(
            (n, os.getxattr(path, n, follow_symlinks=False))
            for n in names
            if not n.startswith("security.selinux")
        )
    )


def snapshot(root: Path, *, mtimes: bool = True, dir_mtimes: bool = True) -> dict[str, Node]:
    """Every entry below `root` (not following symlinks) by relative path."""
    result: dict[str, Node] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            mode = st.st_mode
            if stat.S_ISREG(mode):
                kind = "file"
                content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            elif stat.S_ISDIR(mode):
                kind, content = "dir", ""
            elif stat.S_ISLNK(mode):
                kind, content = "symlink", os.readlink(path)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = "chr" if stat.S_ISCHR(mode) else "blk"
                content = f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
            elif stat.S_ISFIFO(mode):
                kind, content = "fifo", ""
            else:
                kind, content = "other", ""
            keep_mtime = mtimes and (dir_mtimes or kind != "dir") and kind != "symlink"
            result[os.path.relpath(path, root)] = Node(
                kind,
                stat.S_IMODE(mode),
                st.st_uid,
                st.st_gid,
                content,
                _xattrs(path),
                int(st.st_mtime) if keep_mtime else None,
            )
    return result


def hardlink_groups(root: Path) -> set[frozenset[str]]:
    """Sets of relative paths sharing one inode (only inodes with more than one name)."""
    by_inode: dict[tuple[int, int], set[str]] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                by_inode.setdefault((st.st_dev, st.st_ino), set()).add(os.path.relpath(path, root))
    return {frozenset(names) for names in by_inode.values() if len(names) > 1}


def make_tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    """An in-memory tar built verbatim from hand-made members (hostile ones included)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    """A TarInfo with `name` and `kind`, other fields set from keyword arguments."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info


@contextmanager
def overlay_mount(
    lowers: list[Path], upper: Path, work: Path, merged: Path, extra: str = ""
) -> Iterator[Path]:
    """Mount overlayfs (first lower is top; `extra` adds ",opt=val" options); always unmounted."""
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}{extra}"
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
        check=True,
        capture_output=True,
    )
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True, capture_output=True)


@contextmanager
def overlay_readonly(lowers: list[Path], merged: Path) -> Iterator[Path]:
    """Mount a read-only overlayfs of `lowers` (first is top); always unmounted."""
    merged.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={':'.join(map(str, lowers))}"
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
        check=True,
        capture_output=True,
    )
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True, capture_output=True)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode("utf-8", "surrogateescape")
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def pad_block(data: bytes) -> bytes:
    """`data` padded with NULs to a whole number of 512-byte tar blocks."""
    return data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def raw_header(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **fields: object) -> bytes:
    """One ustar header block that claims `size` bytes of data, whatever follows it."""
    info = member(name, kind, size=size, **fields)
    try:
        return info.tobuf(tarfile.USTAR_FORMAT)
    except ValueError:  # long names and big numbers need GNU's extensions
        return info.tobuf(tarfile.GNU_FORMAT)


def pax_header(records: list[tuple[str, str]], kind: bytes = tarfile.XHDTYPE) -> bytes:
    """A PAX extended header (repeated keys allowed, in order) with its data blocks."""
    data = b"".join(_pax_record(key, value) for key, value in records)
    return raw_header("././@PaxHeader", kind, len(data)) + pad_block(data)


def _with_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    return bytes(block)


def _sparse_structs(entries: list[tuple[int, int]], slots: int) -> bytes:
    raw = b"".join(b"%011o\0%011o\0" % (offset, size) for offset, size in entries)
    return raw.ljust(slots * 24, b"\0")


def sparse_member(
    name: str, realsize: int, segments: list[tuple[int, bytes]], fmt: str, mode: int = 0o644
) -> bytes:
    """Header(s) and data of a sparse file in GNU tar's `fmt` (gnu, pax0.0, pax0.1, pax1.0).

    `segments` are (offset, data) in order; everything else is a hole.
    """
    entries = [(offset, len(data)) for offset, data in segments]
    stored = b"".join(data for _, data in segments)
    if fmt == "gnu":
        info = member(name, tarfile.GNUTYPE_SPARSE, size=len(stored), mode=mode)
        block = bytearray(info.tobuf(tarfile.GNU_FORMAT)[-tarfile.BLOCKSIZE :])
        first, rest = entries[:4], entries[4:]
        block[386:482] = _sparse_structs(first, 4)
        block[482] = 1 if rest else 0
        block[483:495] = b"%011o\0" % realsize
        out = [_with_checksum(block)]
        while rest:
            ext = bytearray(_sparse_structs(rest[:21], 21).ljust(tarfile.BLOCKSIZE, b"\0"))
            rest = rest[21:]
            ext[504] = 1 if rest else 0
            out.append(bytes(ext))
        return b"".join(out) + pad_block(stored)
    if fmt == "pax0.0":
        records = [("GNU.sparse.size", str(realsize)), ("GNU.sparse.numblocks", str(len(entries)))]
        for offset, size in entries:
            records += [("GNU.sparse.offset", str(offset)), ("GNU.sparse.numbytes", str(size))]
        body = raw_header(name, size=len(stored), mode=mode) + pad_block(stored)
        return pax_header(records) + body
    if fmt == "pax0.1":
        flat = ",".join(f"{offset},{size}" for offset, size in entries)
        records = [
            ("GNU.sparse.map", flat),
            ("GNU.sparse.name", name),
            ("GNU.sparse.numblocks", str(len(entries))),
            ("GNU.sparse.size", str(realsize)),
        ]
        body = raw_header("GNUSparseFile.0/x", size=len(stored), mode=mode) + pad_block(stored)
        return pax_header(records) + body
    if fmt == "pax1.0":
        records = [
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
            ("GNU.sparse.name", name),
            ("GNU.sparse.realsize", str(realsize)),
        ]
        sparse_map = f"{len(entries)}\n" + "".join(f"{o}\n{n}\n" for o, n in entries)
        data = pad_block(sparse_map.encode()) + stored
        body = raw_header("GNUSparseFile.0/x", size=len(data), mode=mode) + pad_block(data)
        return pax_header(records) + body
    raise ValueError(f"unknown sparse format {fmt!r}")


def end_of_archive() -> bytes:
    return b"\0" * (2 * tarfile.BLOCKSIZE)


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Make writing or extending any file past `limit` bytes fail with EFBIG.

    Guards tests of sparse files: a regression that writes holes out as zeros must not be
    able to fill the disk (a sparse size of 2**62 would otherwise write until it is full).
    """
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
