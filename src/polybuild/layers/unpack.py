"""Safe layer unpacking: apply a (compressed) layer tar onto a root directory, with whiteouts.

Limits, so that a small hostile layer cannot make unpacking use much memory, disk or time:

- Memory stays bounded whatever the layer: data moves in 1 MiB chunks; the headers of one
  entry (PAX records, GNU long names, sparse maps) may read at most 1 MiB, and global PAX
  headers together as much (`tarformat.MAX_HEADER_BYTES`, Go's archive/tar bound); more
  is an ImageError. Members are forgotten once applied. Decompression holds one window:
  32 KiB for gzip, at most 128 MiB for zstd (zstandard's default; frames asking for more
  are refused).
- Disk use follows the data, not the sizes in headers: sparse files (old GNU type 'S' and
  PAX sparse formats 0.0, 0.1 and 1.0) get only their data segments written, with pwrite
  at their offsets, and their size set by ftruncate, so holes stay holes. Aligned 64 KiB
  blocks of zeros in any file's data become holes too, so a gzip/zstd layer holding a
  huge file of zeros costs no disk. Sparse maps must be sorted, must not overlap and must
  lie within the file's size; the size itself is bounded only by the file system (one it
  cannot hold, such as 2**62 bytes on ext4, is an UnpackError).
- Time follows the decompressed stream: each byte is read once (it is hashed for the
  diff-id anyway); data of entries we do not apply is read through, not skipped block by
  block, so a forged size on a stream that ends early fails at once; PAX records are
  parsed in linear time (Python's own regexes before 3.11.10 are quadratic).
- There is no limit on the decompressed size itself, nor on the number of entries: a
  layer's digest is verified before it is unpacked, so its size is the image author's
  choice, as with docker and containerd. Only non-zero data costs disk, but compressible
  non-zero data (repeated bytes) still expands by the compressor's ratio (about 1000x for
  gzip, far more for zstd), and every entry costs an inode.

Malformed tar structure is an ImageError (an UnpackError when it names an entry); a
corrupt or truncated header after the first entry is an error, not the end of the layer.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from polybuild.errors import DigestMismatchError, ImageError, UnpackError
from polybuild.layers import tarformat
from polybuild.layers.compress import Compression, open_decompressed
from polybuild.layers.tarwriter import OPAQUE_WHITEOUT, WHITEOUT_PREFIX
from polybuild.rootfs import RootDir, RootfsPathError, clean_path, proc_path

__all__ = ["SkippedEntry", "UnpackError", "UnpackMode", "UnpackResult", "unpack_layer"]

_log = logging.getLogger(__name__)
_CHUNK = 1 << 20
# Aligned runs of zeros at least this long are left as holes.
_HOLE_BLOCK = 64 << 10
_ZERO_BLOCK = bytes(_HOLE_BLOCK)
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID
# Never taken from layer content: they steer overlayfs itself (redirects, opaque dirs).
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
# An untrusted layer may carry only attributes that grant no privileges.
_UNTRUSTED_XATTRS = ("user.", "system.posix_acl_access", "system.posix_acl_default")
_IGNORED_XATTR_ERRORS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES)
# What Python raises for values no system call takes (a NUL in a name, a uid of 2**70).
_BAD_VALUE_ERRORS = (ValueError, OverflowError)


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


def data_segments(member: tarfile.TarInfo, stored: int) -> list[tuple[int, int]]:
    """Where the stored data of regular file `member` goes: sorted (offset, length) pairs."""
    if member.size < 0:
        raise UnpackError(member.name, f"negative size {member.size}")
    # typeshed says bytes; tarfile sets a list of (offset, length) for sparse members.
    sparse = cast(list[tuple[int, int]] | None, member.sparse)
    if sparse is None:
        return [(0, member.size)] if member.size else []
    segments: list[tuple[int, int]] = []
    end = total = 0
    for offset, length in sparse:
        if length == 0:
            continue  # GNU tar fills unused slots of its header with empty entries
        if length < 0 or offset < end or offset + length > member.size:
            raise UnpackError(
                member.name,
                f"invalid sparse map: ({offset}, {length}) after {end} in a file of "
                f"{member.size} bytes",
            )
        segments.append((offset, length))
        end = offset + length
        total += length
    if total > stored:
        raise UnpackError(member.name, f"sparse map needs {total} bytes, entry has {stored}")
    return segments


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def write_keeping_holes(fd: int, data: bytes, offset: int) -> None:
    """Write `data` at `offset`, but leave aligned _HOLE_BLOCK runs of zeros unwritten."""
    view = memoryview(data)
    pending = pos = 0  # data[pending:pos] is still to be written
    while pos < len(data):
        end = min(len(data), pos + _HOLE_BLOCK - (offset + pos) % _HOLE_BLOCK)
        if (
            end - pos == _HOLE_BLOCK
            and data[pos] == 0
            and data[end - 1] == 0
            and data[pos:end] == _ZERO_BLOCK
        ):
            if pending < pos:
                _pwrite_all(fd, view[pending:pos], offset + pending)
            pending = end
        pos = end
    if pending < len(data):
        _pwrite_all(fd, view[pending:], offset + pending)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    try:
        mtime_ns = int(member.mtime * 1_000_000_000)
    except _BAD_VALUE_ERRORS:
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
        segments = data_segments(member, tar.offset - member.offset_data)
        data = tarformat.tar_data(tar)
        data.seek(member.offset_data)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=parent)
        try:
            # Stored data is the segments back to back; between them the file has holes.
            for start, length in segments:
                pos, end = start, start + length
                while pos < end:
                    chunk = data.read(min(_CHUNK, end - pos))
                    if not chunk:
                        raise UnpackError(member.name, "the layer ends inside this entry's data")
                    write_keeping_holes(fd, chunk, pos)
                    pos += len(chunk)
            os.ftruncate(fd, member.size)
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


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


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
    budget = tarformat.HeaderBudget(tar_stream)
    rootdir = RootDir(str(root))
    unpacker = _Unpacker(rootdir, mode, trusted, opaque_xattr)
    entries = 0
    try:
        with budget.headers():  # opening reads the first entry's headers
            tar = tarformat.LayerTarFile.open(fileobj=budget, mode="r|", errors="surrogateescape")
        with tar:
            while True:
                with budget.headers():
                    member = tar.next()
                if member is None:
                    break
                entries += 1
                try:
                    unpacker.apply(tar, member)
                except UnpackError:
                    raise
                except (RootfsPathError, OSError, *_BAD_VALUE_ERRORS) as exc:
                    raise UnpackError(member.name, _reason(exc)) from exc
                tarformat.read_through(tar)
            try:
                unpacker.finish()
            except (RootfsPathError, OSError) as exc:
                raise ImageError(f"cannot set directory metadata: {_reason(exc)}") from exc
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
