"""ADD's local archives: tar (plain, gzip, bzip2, xz, zstd) found by content and extracted safely.

As BuildKit's unpack (solver/llbsolver/file/unpack.go, unpack_root.go): a regular file is an
archive when it decompresses and its first tar header reads; it is extracted *into* the
destination as a plain tar (no whiteouts), names cannot leave the extraction directory, owners
come from the headers unless --chown is given, implied parents are 0755 root-owned, and
--chmod does not apply to archive content.

Archives are read with the hardened tar reader (tarstream/reader.py), so a hostile
one costs little memory and time: headers of one entry may read at most 1 MiB, members are
forgotten once extracted, unread data is read through, and a corrupt header after the first
entry is an error rather than the end of the archive. Sparse files keep their holes, as do
aligned 64 KiB runs of zeros. Every failure is a FileOpError naming the archive (and the
entry, when one is to blame); OSErrors of writing the destination go up to the copy, which
names the instruction and path.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from pathlib import Path

from polybuild.errors import ImageError, UnpackError
from polybuild.fileops.errors import FileOpError
from polybuild.fileops.owner import ResolvedOwner
from polybuild.fileops.tree import DestRoot

# The layer unpacker's checks of sparse maps and its hole-keeping writes, shared as they are.
from polybuild.layers.filedata import data_segments, write_entry_data
from polybuild.rootfs import lstat_at, proc_path
from polybuild.tarstream import reader as tarreader
from polybuild.tarstream.decompress import decompressed

__all__ = ["extract_archive", "is_archive"]

_MAX_MTIME_NS = 1 << 63


class _EntryError(Exception):
    """Why one archive entry cannot be extracted; extract_archive adds the archive's name."""


def is_archive(path: str) -> bool:
    """True when `path` is a regular file whose (decompressed) content starts with a tar header.

    A first header the hardened reader refuses (over 1 MiB of PAX records, say) makes the
    file no archive, as Go's archive/tar does for BuildKit: it is copied as it is.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, "rb") as raw:
            entries = tarreader.read_entries(decompressed(raw))
            try:
                return next(entries, None) is not None
            finally:
                entries.close()
    except (OSError, tarfile.TarError):
        return False


def _clean(name: str, what: str) -> list[str]:
    """Header names as BuildKit's cleanRootTarPath: leading `/` dropped, no escaping `..`."""
    parts: list[str] = []
    for part in name.lstrip("/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise _EntryError(f"{what} {name!r} is outside extraction root")
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
    path: str,
    dest: DestRoot,
    dest_parts: list[str],
    owner: ResolvedOwner | None,
    instruction: str = "",
) -> int:
    """Extract the archive at host `path` into directory `dest_parts`; returns entries applied."""
    archive = os.path.basename(path)
    os.close(dest.mkdir_all(dest_parts))
    entries = 0
    # Directory times are set last (children would bump them); one per directory.
    dirs: dict[tuple[str, ...], int] = {}
    # A root at the extraction directory: archive names and links cannot leave it.
    with DestRoot(Path(dest.root, *dest_parts)) as inner, open(path, "rb") as raw:
        try:
            for tar, member in tarreader.read_entries(decompressed(raw)):
                try:
                    parts = _clean(member.name, "path")
                    if not parts:
                        continue
                    entries += 1
                    _apply(tar, member, parts, inner, owner, dirs)
                except (_EntryError, FileOpError, ImageError, ValueError, OverflowError) as exc:
                    reason = exc.reason if isinstance(exc, FileOpError) else _reason(exc)
                    raise FileOpError(
                        f"archive {archive}: entry {member.name!r}: {reason}",
                        instruction=instruction,
                    ) from exc
        except tarfile.TarError as exc:
            raise FileOpError(
                f"archive {archive} is not a valid tar archive: {exc}", instruction=instruction
            ) from exc
        for dir_parts, mtime_ns in reversed(dirs.items()):
            fd = inner.mkdir_all(list(dir_parts))
            try:
                os.utime(proc_path(fd), ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
    return entries


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnpackError):  # the unpacker's words name the entry as a layer's
        return str(exc).removeprefix(f"layer entry {exc.entry!r}: ")
    return str(exc)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    """Whole seconds, as before; a time no file can have (NaN, 1e300) is the entry's error."""
    try:
        mtime_ns = max(int(member.mtime), 0) * 1_000_000_000
    except (ValueError, OverflowError):
        mtime_ns = _MAX_MTIME_NS
    if mtime_ns >= _MAX_MTIME_NS:
        raise _EntryError(f"modification time {member.mtime!r} is out of range")
    return mtime_ns


def _apply(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    parts: list[str],
    root: DestRoot,
    owner: ResolvedOwner | None,
    dirs: dict[tuple[str, ...], int],
) -> None:
    uid, gid = (owner.uid, owner.gid) if owner else (member.uid, member.gid)
    mode = member.mode & 0o7777
    mtime_ns = _mtime_ns(member)
    parent = root.mkdir_all(parts[:-1])  # implied parents: 0755, root-owned
    name = parts[-1]
    try:
        _remove(parent, name, keep_dir=member.isdir())
        if member.isdir():
            if lstat_at(parent, name) is None:
                os.mkdir(name, 0o700, dir_fd=parent)
            dirs[tuple(parts)] = mtime_ns
        elif member.isreg():
            # The sparse map is checked before the file exists, as the unpacker does.
            segments = data_segments(member, tar.offset - member.offset_data)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=parent)
            try:
                write_entry_data(tar, member, segments, fd, source="archive")
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
            target = _clean(member.linkname, "hard link target")
            if not target:
                raise _EntryError("hard link to the extraction root")
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
            raise _EntryError(f"unsupported tar entry type {member.type!r}")
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
