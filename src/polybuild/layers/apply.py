"""Applying a layer's entries one at a time onto a root directory, as if chrooted there.

Every name resolves inside the root by fd (`..`, absolute names and symlinks cannot lead
out); a hard link must name a file already inside it. What an entry may carry is policy.py's
decision, whiteouts are whiteout.py's, a regular file's data filedata.py's. Directory modes
and times come last (`finish`), so that creating children cannot disturb them.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tarfile
from dataclasses import dataclass

from polybuild.errors import UnpackError
from polybuild.layers.filedata import data_segments, write_entry_data
from polybuild.layers.policy import (
    SkippedEntry,
    entry_refusal,
    layer_xattrs,
    permitted_mode,
    xattr_permitted,
)
from polybuild.layers.whiteout import UnpackMode, Whiteouts, is_whiteout, is_whiteout_device
from polybuild.rootfs import RootDir, clean_path, proc_path

__all__ = ["BAD_VALUE_ERRORS", "EntryApplier"]

# Logged under the name callers know: the unpacker's warnings.
_log = logging.getLogger("polybuild.layers.unpack")
_IGNORED_XATTR_ERRORS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES)
# What Python raises for values no system call takes (a NUL in a name, a uid of 2**70).
BAD_VALUE_ERRORS = (ValueError, OverflowError)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    try:
        mtime_ns = int(member.mtime * 1_000_000_000)
    except BAD_VALUE_ERRORS:
        mtime_ns = 1 << 63  # NaN or infinity from a PAX record
    if not -(1 << 63) <= mtime_ns < 1 << 63:
        raise UnpackError(member.name, f"modification time {member.mtime!r} is out of range")
    return mtime_ns


@dataclass(frozen=True, slots=True)
class _Deferred:
    """Directory metadata applied after all entries, so children cannot disturb it."""

    parts: tuple[str, ...]
    inode: tuple[int, int]
    mode: int
    mtime_ns: int


class EntryApplier:
    """Applies entries one at a time; keeps what it skipped and the directories to finish."""

    def __init__(self, root: RootDir, mode: UnpackMode, trusted: bool, opaque_xattr: str) -> None:
        self.root = root
        self.trusted = trusted
        self.whiteouts = Whiteouts(root, mode, opaque_xattr)
        self.chown = os.geteuid() == 0
        self.deferred: list[_Deferred] = []
        self.skipped: list[SkippedEntry] = []

    def skip(self, name: str, reason: str) -> None:
        _log.warning("skipping layer entry %r: %s", name, reason)
        self.skipped.append(SkippedEntry(name, reason))

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = clean_path(member.name)
        if not parts:
            return  # the root itself: its metadata belongs to whoever made the root
        base = parts[-1]
        if is_whiteout(base):
            self.whiteouts.apply(member.name, parts)
            return
        refusal = entry_refusal(member, self.trusted)
        if refusal is not None:
            self.skip(member.name, refusal)
            return
        parent = self.root.open_dir(parts[:-1], create=True)
        assert parent is not None  # create=True never returns None
        try:
            pst = os.fstat(parent)
            if member.islnk():
                self._hardlink(member, parent, base)
            else:
                self._create(tar, member, parts, parent, base)
            self.whiteouts.wrote(pst, base)
        finally:
            os.close(parent)

    def _create(
        self,
        tar: tarfile.TarFile,
        member: tarfile.TarInfo,
        parts: list[str],
        parent: int,
        base: str,
    ) -> None:
        existing = RootDir.lstat_at(parent, base)
        was_whiteout = existing is not None and is_whiteout_device(existing)
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            RootDir.remove_at(parent, base, existing)
            existing = None
        mode = permitted_mode(member, self.trusted)
        mtime_ns = _mtime_ns(member)
        if member.isreg():
            self._regular(tar, member, parent, base, mode, mtime_ns)
            return
        if member.issym():
            os.symlink(member.linkname, base, dir_fd=parent)
            if self.chown:
                os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            self._xattrs(member, proc_path(parent, base))
            os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=parent, follow_symlinks=False)
            return
        if member.isdir():
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=parent)
        elif member.isfifo():
            os.mkfifo(base, 0o600, dir_fd=parent)
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(
                base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent
            )
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            path = proc_path(fd)
            if self.chown:
                os.chown(path, member.uid, member.gid)
            self._xattrs(member, proc_path(parent, base))
            if member.isdir():
                self.whiteouts.replaced(path, was_whiteout)
                st = os.fstat(fd)
                self.deferred.append(
                    _Deferred(tuple(parts), (st.st_dev, st.st_ino), mode, mtime_ns)
                )
            else:
                os.chmod(path, mode)
                os.utime(path, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)

    def _regular(
        self,
        tar: tarfile.TarFile,
        member: tarfile.TarInfo,
        parent: int,
        base: str,
        mode: int,
        mtime_ns: int,
    ) -> None:
        segments = data_segments(member, tar.offset - member.offset_data)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=parent)
        try:
            write_entry_data(tar, member, segments, fd)
            # chown clears set-id bits and capabilities, so it comes before chmod and xattrs.
            if self.chown:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, mode)
            self._xattrs(member, fd)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)

    def _hardlink(self, member: tarfile.TarInfo, parent: int, base: str) -> None:
        target = clean_path(member.linkname)
        if not target:
            raise UnpackError(member.name, "hard link to the root directory")
        # Resolved inside the root like any path, so "/etc/shadow" means ROOT/etc/shadow.
        tparent = self.root.open_dir(target[:-1], create=False)
        if tparent is None:
            raise UnpackError(
                member.name, f"hard link target {member.linkname!r} is not in the layer"
            )
        try:
            tst = RootDir.lstat_at(tparent, target[-1])
            if tst is None:
                raise UnpackError(
                    member.name, f"hard link target {member.linkname!r} is not in the layer"
                )
            if stat.S_ISDIR(tst.st_mode):
                raise UnpackError(member.name, "hard link to a directory")
            existing = RootDir.lstat_at(parent, base)
            if existing is not None:
                if (existing.st_dev, existing.st_ino) == (tst.st_dev, tst.st_ino):
                    return
                RootDir.remove_at(parent, base, existing)
            os.link(target[-1], base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(tparent)

    def _xattrs(self, member: tarfile.TarInfo, target: int | bytes) -> None:
        for name, value in layer_xattrs(member):
            if not xattr_permitted(name, self.trusted):
                self.skip(member.name, f"xattr {name} in an untrusted layer")
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, value)
                else:
                    os.setxattr(target, name, value, follow_symlinks=False)
            except OSError as exc:
                # Namespaces the file system or our privileges do not allow are not fatal.
                if exc.errno not in _IGNORED_XATTR_ERRORS:
                    raise

    def finish(self) -> None:
        """Directory modes and times, last: creating children would otherwise bump mtimes."""
        for item in reversed(self.deferred):
            fd = self.root.open_dir(list(item.parts), create=False)
            if fd is None:
                continue
            try:
                st = os.fstat(fd)
                # A later entry may have replaced the directory; never touch a stranger.
                if (st.st_dev, st.st_ino) != item.inode:
                    continue
                os.chmod(proc_path(fd), item.mode)
                os.utime(proc_path(fd), ns=(item.mtime_ns, item.mtime_ns))
            finally:
                os.close(fd)
