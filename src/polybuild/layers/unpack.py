"""Safe layer unpacking: apply a (compressed) layer tar onto a root directory, with whiteouts."""

from __future__ import annotations

import enum
import errno
import logging
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polybuild.errors import DigestMismatchError, ImageError
from polybuild.layers.compress import Compression, open_decompressed
from polybuild.layers.rootfs import RootDir, UnsafePathError, clean_path, proc_path
from polybuild.layers.tarwriter import OPAQUE_WHITEOUT, WHITEOUT_PREFIX

__all__ = ["SkippedEntry", "UnpackError", "UnpackMode", "UnpackResult", "unpack_layer"]

_log = logging.getLogger(__name__)
_CHUNK = 1 << 20
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID
# Never taken from layer content: they steer overlayfs itself (redirects, opaque dirs).
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
# An untrusted layer may carry only attributes that grant no privileges.
_UNTRUSTED_XATTRS = ("user.", "system.posix_acl_access", "system.posix_acl_default")
_IGNORED_XATTR_ERRORS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES)


class UnpackError(ImageError):
    """A layer entry could not be applied safely; `entry` names it as the tar does."""

    def __init__(self, entry: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"layer entry {entry!r}: {reason}", hint=hint)
        self.entry = entry


class UnpackMode(enum.StrEnum):
    """MERGED applies whiteouts by deleting; OVERLAY keeps them as an overlayfs lower dir."""

    MERGED = "merged"
    OVERLAY = "overlay"


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """An entry that was deliberately not applied, and why."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class UnpackResult:
    """What unpacking did: the tar's diff-id, its compression, entries read and skipped."""

    diff_id: str
    compression: Compression
    entries: int
    skipped: tuple[SkippedEntry, ...]


@dataclass(frozen=True, slots=True)
class _Deferred:
    """Directory metadata applied after all entries, so children cannot disturb it."""

    parts: tuple[str, ...]
    inode: tuple[int, int]
    mode: int
    mtime_ns: int


class _Unpacker:
    """Applies entries one at a time; keeps the paths this layer wrote for whiteout rules."""

    def __init__(self, root: RootDir, mode: UnpackMode, trusted: bool, opaque_xattr: str) -> None:
        self.root = root
        self.mode = mode
        self.trusted = trusted
        self.opaque_xattr = opaque_xattr
        self.chown = os.geteuid() == 0
        # (dev, inode of parent dir, name): whiteouts only hide what lower layers put there.
        self.written: set[tuple[int, int, str]] = set()
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
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(member.name, parts)
            return
        if member.ischr() or member.isblk():
            if not self.trusted:
                self.skip(member.name, "device node in an untrusted layer")
                return
        elif not (
            member.isreg() or member.isdir() or member.issym() or member.islnk() or member.isfifo()
        ):
            self.skip(member.name, f"unsupported tar entry type {member.type!r}")
            return
        parent = self.root.open_dir(parts[:-1], create=True)
        assert parent is not None  # create=True never returns None
        try:
            pst = os.fstat(parent)
            if member.islnk():
                self._hardlink(member, parent, base)
            else:
                self._create(tar, member, parts, parent, base)
            self.written.add((pst.st_dev, pst.st_ino, base))
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
        was_whiteout = existing is not None and _is_whiteout_device(existing)
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            RootDir.remove_at(parent, base, existing)
            existing = None
        mode = member.mode & 0o7777
        if not self.trusted and not member.isdir():
            mode &= ~_SPECIAL_BITS
        mtime_ns = int(member.mtime * 1_000_000_000)
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
                if was_whiteout and self.mode is UnpackMode.OVERLAY:
                    os.setxattr(path, self.opaque_xattr, b"y")
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
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=parent)
        try:
            source = tar.extractfile(member)
            if source is not None:
                while chunk := source.read(_CHUNK):
                    os.write(fd, chunk)
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
        for key, raw in member.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                name, value = key[13:], raw.encode("utf-8", "surrogateescape")
            else:
                continue
            if name.startswith(_OVERLAY_XATTRS):
                continue
            if not self.trusted and not name.startswith(_UNTRUSTED_XATTRS):
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

    def _whiteout(self, name: str, parts: list[str]) -> None:
        base = parts[-1]
        if base == OPAQUE_WHITEOUT:
            self._opaque(parts[:-1])
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other ".wh..wh." names are aufs bookkeeping with no meaning here
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", ".."):
            raise UnpackError(name, "whiteout without a valid name")
        overlay = self.mode is UnpackMode.OVERLAY
        parent = self.root.open_dir(parts[:-1], create=overlay)
        if parent is None:
            return  # nothing there to hide
        try:
            pst = os.fstat(parent)
            if (pst.st_dev, pst.st_ino, hidden) in self.written:
                return  # a whiteout never hides what its own layer wrote
            existing = RootDir.lstat_at(parent, hidden)
            if existing is not None:
                RootDir.remove_at(parent, hidden, existing)
            if overlay:
                os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
        finally:
            os.close(parent)

    def _opaque(self, dir_parts: list[str]) -> None:
        overlay = self.mode is UnpackMode.OVERLAY
        fd = self.root.open_dir(dir_parts, create=overlay)
        if fd is None:
            return
        try:
            if overlay:
                os.setxattr(proc_path(fd), self.opaque_xattr, b"y")
            else:
                self._clear_lower(fd)
        finally:
            os.close(fd)

    def _clear_lower(self, dir_fd: int) -> None:
        """Remove everything below `dir_fd` that this layer did not write."""
        dst = os.fstat(dir_fd)
        readable = os.open(proc_path(dir_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            names = os.listdir(readable)
        finally:
            os.close(readable)
        for child in names:
            st = RootDir.lstat_at(dir_fd, child)
            if st is None:
                continue
            if (dst.st_dev, dst.st_ino, child) not in self.written:
                RootDir.remove_at(dir_fd, child, st)
            elif stat.S_ISDIR(st.st_mode):
                sub = os.open(child, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
                try:
                    self._clear_lower(sub)
                finally:
                    os.close(sub)

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


def _is_whiteout_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def unpack_layer(
    stream: BinaryIO,
    root: Path,
    *,
    mode: UnpackMode = UnpackMode.MERGED,
    trusted: bool = False,
    expected_diff_id: str | None = None,
    opaque_xattr: str = "trusted.overlay.opaque",
) -> UnpackResult:
    """Apply the layer in `stream` (gzip, zstd or plain tar) onto directory `root`.

    Every name resolves inside `root` as if chrooted (`..`, absolute names and symlinks
    cannot lead out); a hard link must name a file already inside `root`. `trusted` is for
    base images and layers we built: device nodes, set-id bits and privileged xattrs
    (security.capability, trusted.*) are applied only then; otherwise they are skipped,
    recorded in the result and logged as warnings. Ownership is applied when running as
    root. With `expected_diff_id`, a mismatch raises DigestMismatchError after unpacking,
    so the caller must then discard `root`.
    """
    tar_stream, compression = open_decompressed(stream)
    rootdir = RootDir(str(root))
    unpacker = _Unpacker(rootdir, mode, trusted, opaque_xattr)
    entries = 0
    try:
        with tarfile.open(fileobj=tar_stream, mode="r|", errors="surrogateescape") as tar:
            for member in tar:
                entries += 1
                try:
                    unpacker.apply(tar, member)
                except UnpackError:
                    raise
                except (UnsafePathError, OSError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    raise UnpackError(member.name, str(reason)) from exc
            unpacker.finish()
        # The diff-id covers the whole tar, including the padding after the end marker.
        while tar_stream.read(_CHUNK):
            pass
    except tarfile.TarError as exc:
        raise ImageError(f"layer is not a valid tar archive: {exc}") from exc
    finally:
        rootdir.close()
    diff_id = tar_stream.diff_id()
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise DigestMismatchError(f"layer diff-id is {diff_id}, expected {expected_diff_id}")
    return UnpackResult(diff_id, compression, entries, tuple(unpacker.skipped))
