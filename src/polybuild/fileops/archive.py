"""ADD's local archives: tar (plain, gzip, bzip2, xz, zstd) found by content and extracted safely.

As BuildKit's unpack (solver/llbsolver/file/unpack.go, unpack_root.go): a regular file is an
archive when it decompresses and its first tar header reads; it is extracted *into* the
destination as a plain tar (no whiteouts), names cannot leave the extraction directory, owners
come from the headers unless --chown is given, implied parents are 0755 root-owned, and
--chmod does not apply to archive content.
"""

from __future__ import annotations

import bz2
import lzma
import os
import shutil
import stat
import tarfile
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, cast

import zstandard
from isal import igzip

from polybuild.fileops.errors import FileOpError
from polybuild.fileops.owner import ResolvedOwner
from polybuild.fileops.tree import DestRoot, lstat_at
from polybuild.layers.rootfs import proc_path

__all__ = ["extract_archive", "is_archive", "open_archive"]

_CHUNK = 1 << 20


def _decompressed(raw: BinaryIO, stack: ExitStack) -> BinaryIO:
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        gz = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
        return cast(BinaryIO, stack.enter_context(gz))
    if magic.startswith(b"BZh"):
        return cast(BinaryIO, stack.enter_context(bz2.BZ2File(raw)))
    if magic.startswith(b"\xfd7zXZ\x00"):
        return cast(BinaryIO, stack.enter_context(lzma.LZMAFile(raw)))
    if magic.startswith(b"\x28\xb5\x2f\xfd"):
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        return cast(BinaryIO, stack.enter_context(reader))
    return raw


def open_archive(path: str, stack: ExitStack) -> tarfile.TarFile:
    """A streaming TarFile over the (decompressed) file; raises tarfile/OS/codec errors."""
    raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by the stack
    stream = _decompressed(raw, stack)
    return stack.enter_context(tarfile.open(fileobj=stream, mode="r|", errors="surrogateescape"))


def is_archive(path: str) -> bool:
    """True when `path` is a regular file whose (decompressed) content starts with a tar header."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with ExitStack() as stack:
            return open_archive(path, stack).next() is not None
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zstandard.ZstdError, ValueError):
        return False


def _clean(name: str) -> list[str]:
    """Header names as BuildKit's cleanRootTarPath: leading `/` dropped, no escaping `..`."""
    parts: list[str] = []
    for part in name.lstrip("/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise FileOpError(f"archive path {name!r} is outside extraction root")
            parts.pop()
            continue
        parts.append(part)
    return parts


def _remove(parent: int, name: str, keep_dir: bool) -> None:
    st = lstat_at(parent, name)
    if st is None or (keep_dir and stat.S_ISDIR(st.st_mode)):
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def extract_archive(
    path: str, dest: DestRoot, dest_parts: list[str], owner: ResolvedOwner | None
) -> int:
    """Extract the archive at host `path` into directory `dest_parts`; returns entries applied."""
    os.close(dest.mkdir_all(dest_parts))
    entries = 0
    dirs: list[tuple[list[str], int]] = []
    # A root at the extraction directory: archive names and links cannot leave it.
    with DestRoot(Path(dest.root, *dest_parts)) as inner, ExitStack() as stack:
        try:
            tar = open_archive(path, stack)
            for member in tar:
                parts = _clean(member.name)
                if not parts:
                    continue
                entries += 1
                _apply(tar, member, parts, inner, owner, dirs)
        except (tarfile.TarError, EOFError, lzma.LZMAError, zstandard.ZstdError) as exc:
            raise FileOpError(f"invalid archive {os.path.basename(path)}: {exc}") from exc
        # directory times last: their children would otherwise bump them
        for parts, mtime_ns in reversed(dirs):
            fd = inner.mkdir_all(parts)
            try:
                os.utime(proc_path(fd), ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
    return entries


def _apply(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    parts: list[str],
    root: DestRoot,
    owner: ResolvedOwner | None,
    dirs: list[tuple[list[str], int]],
) -> None:
    uid, gid = (owner.uid, owner.gid) if owner else (member.uid, member.gid)
    mode = member.mode & 0o7777
    mtime_ns = max(int(member.mtime), 0) * 1_000_000_000
    parent = root.mkdir_all(parts[:-1])  # implied parents: 0755, root-owned
    name = parts[-1]
    try:
        _remove(parent, name, keep_dir=member.isdir())
        if member.isdir():
            if lstat_at(parent, name) is None:
                os.mkdir(name, 0o700, dir_fd=parent)
            dirs.append((parts, mtime_ns))
        elif member.isreg():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=parent)
            try:
                source = tar.extractfile(member)
                if source is not None:
                    while chunk := source.read(_CHUNK):
                        os.write(fd, chunk)
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
            return
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=parent, follow_symlinks=False)
            return
        elif member.islnk():
            target = _clean(member.linkname)
            if not target:
                raise FileOpError(f"archive hardlink {member.name!r} targets extraction root")
            tparent = root.mkdir_all(target[:-1])
            try:
                os.link(
                    target[-1], name, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False
                )
            finally:
                os.close(tparent)
            return
        elif member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=parent)
        else:
            raise FileOpError(f"unsupported tar entry {member.name!r} type {member.type!r}")
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            os.chown(proc_path(fd), uid, gid)
            os.chmod(proc_path(fd), mode)
            if not member.isdir():
                os.utime(proc_path(fd), ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
    finally:
        os.close(parent)
