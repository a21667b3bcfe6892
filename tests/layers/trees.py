"""Test helpers for layers: tree snapshots, hostile tar construction and overlay mounts."""

from __future__ import annotations

import hashlib
import io
import os
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
