"""Writing into a destination root as if chrooted: directory fds, no path ever leaves the root.

Every destination entry is addressed as (directory fd, name); directories are opened with
O_NOFOLLOW one component at a time and symlinks met on the way are resolved against the
root (polybuild.rootfs), so a hostile `/etc -> /` or `x -> ../../..` can only lead back into
the root. Metadata calls without an *at form go through /proc/self/fd of an O_PATH fd.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from polybuild.fileops.errors import FileOpError
from polybuild.fileops.owner import ResolvedOwner
from polybuild.rootfs import (
    DIR_FLAGS,
    RootfsPathError,
    clean_path,
    lstat_at,
    open_dir_in_root,
    proc_path,
    resolve_parts,
)

__all__ = ["DestRoot", "Meta"]

# Never copied: they steer overlayfs itself.
_SKIPPED_XATTRS = ("trusted.overlay.", "user.overlay.")
_IGNORED_XATTR_ERRORS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES)


@dataclass(frozen=True, slots=True)
class Meta:
    """Metadata to give one destination entry."""

    uid: int
    gid: int
    mode: int  # st_mode & 0o7777; ignored for symlinks
    atime_ns: int
    mtime_ns: int


class DestRoot:
    """The destination root directory; `created` collects the paths a copy made (for tests)."""

    def __init__(
        self,
        root: Path,
        *,
        owner: ResolvedOwner | None = None,
        created_mtime_ns: int | None = None,
        created_mode: int = 0o755,
    ) -> None:
        self.root = root
        self.created_mode = created_mode
        self.fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.owner = owner
        self.created_mtime_ns = created_mtime_ns
        self._dated: list[int] = []  # O_PATH fds of created dirs, dated once all is written

    def finish(self) -> None:
        """Give created directories `created_mtime_ns` now that nothing more goes into them."""
        for fd in reversed(self._dated):
            mtime = self.created_mtime_ns
            assert mtime is not None
            os.utime(proc_path(fd), ns=(mtime, mtime))
        self._close_dated()

    def _close_dated(self) -> None:
        for fd in self._dated:
            os.close(fd)
        self._dated.clear()

    def close(self) -> None:
        self._close_dated()
        os.close(self.fd)

    def __enter__(self) -> DestRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, path: str) -> list[str]:
        """Components of `path` with every symlink (the last too) resolved inside the root."""
        return resolve_parts(self.fd, path)

    def mkdir_all(self, parts: list[str]) -> int:
        """An O_PATH fd of directory `parts`, creating what is missing like BuildKit's MkdirAll.

        Created directories get `created_mode` (0755), the `owner` (when given) and
        `created_mtime_ns` (when given, set by `finish`; else the current time). Existing
        directories are not touched.
        """
        try:
            fd = open_dir_in_root(self.fd, parts, create=True, on_created=self._created_dir)
        except RootfsPathError as exc:
            raise FileOpError(str(exc)) from None
        except NotADirectoryError:
            raise FileOpError(f"mkdir /{'/'.join(parts)}: not a directory") from None
        assert fd is not None  # create=True never answers "missing"
        return fd

    def _created_dir(self, fd: int) -> None:
        path = proc_path(fd)
        if self.owner is not None:
            os.chown(path, self.owner.uid, self.owner.gid)
        os.chmod(path, self.created_mode)  # independent of our umask
        if self.created_mtime_ns is not None:
            self._dated.append(os.dup(fd))

    def mkdir_child(self, parent: int, name: str) -> int:
        """An O_PATH fd of directory `name` in `parent`, made when missing (mode set later)."""
        st = lstat_at(parent, name)
        if st is None:
            os.mkdir(name, 0o700, dir_fd=parent)
        elif not stat.S_ISDIR(st.st_mode):
            raise FileOpError(f"cannot copy to non-directory: {name}")
        return os.open(name, DIR_FLAGS, dir_fd=parent)


def remove_non_dir(dir_fd: int, name: str, what: str) -> None:
    """fsutil's ensureEmptyFileTarget: replace anything but a directory."""
    st = lstat_at(dir_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        raise FileOpError(f"cannot replace to directory {what} with file")
    os.unlink(name, dir_fd=dir_fd)


def set_meta(dir_fd: int, name: str, meta: Meta, *, is_link: bool) -> None:
    """Owner, then mode (chown clears set-id bits), then times; never follows `name`."""
    os.chown(name, meta.uid, meta.gid, dir_fd=dir_fd, follow_symlinks=False)
    if not is_link:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            os.chmod(proc_path(fd), meta.mode)
        finally:
            os.close(fd)
    os.utime(name, ns=(meta.atime_ns, meta.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


def copy_xattrs(src: str, dir_fd: int, name: str) -> None:
    """Extended attributes of host path `src` onto `name`; refused ones are skipped as BuildKit."""
    try:
        keys = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for key in keys:
        if key.startswith(_SKIPPED_XATTRS):
            continue
        try:
            value = os.getxattr(src, key, follow_symlinks=False)
            os.setxattr(proc_path(dir_fd, name), key, value, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _IGNORED_XATTR_ERRORS:
                raise


def write_file_from(src_fd: int, dir_fd: int, name: str) -> int:
    """Create `name` (never following a link) and copy `src_fd` into it; returns the new fd."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(name, flags, 0o600, dir_fd=dir_fd)
    try:
        size = os.fstat(src_fd).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(src_fd, out, min(size - copied, 1 << 30))
                if n == 0:
                    break
                copied += n
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            os.lseek(src_fd, copied, os.SEEK_SET)
            os.lseek(out, copied, os.SEEK_SET)
            while chunk := os.read(src_fd, 1 << 20):
                os.write(out, chunk)
    except BaseException:
        os.close(out)
        raise
    return out


def relative_parts(path: str) -> list[str]:
    """`path` cleaned lexically: `..` stops at the root, leading `/` and `.` dropped."""
    return clean_path(path)
