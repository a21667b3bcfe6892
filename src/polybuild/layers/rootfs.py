"""Path resolution inside a root directory as if chrooted there: nothing ever leads out of it."""

from __future__ import annotations

import os
import shutil
import stat

from polybuild.errors import ImageError
from polybuild.rootfs import RootfsPathError, open_dir_in_root

__all__ = ["RootDir", "UnsafePathError", "clean_path"]

# Same bound as the kernel's MAXSYMLINKS: a longer chain is a loop or an attack.


class UnsafePathError(ImageError):
    """A path inside the root cannot be resolved (loop, non-directory parent, missing target)."""


def clean_path(name: str) -> list[str]:
    """Lexically normalise a member name into components; `..` stops at the root, `/` is dropped.

    `../../etc/x`, `/etc/x` and `a/../../etc/x` all become ["etc", "x"], as they would for
    a process chrooted into the root.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return parts


def proc_path(fd: int, name: str | None = None) -> bytes:
    """A /proc/self/fd path naming `fd` itself, or the entry `name` inside directory `fd`.

    Metadata calls that have no *at form (xattrs, chmod of an O_PATH fd) go through it:
    the fd pins the inode, so no path is re-resolved from the real root.
    """
    base = b"/proc/self/fd/%d" % fd
    return base if name is None else base + b"/" + os.fsencode(name)


class RootDir:
    """A directory used as a root; every lookup stays inside it, symlinks included.

    Symlinks are followed the way the kernel would inside a chroot (absolute targets start
    again at the root, `..` stops there), component by component with O_NOFOLLOW, so a
    link to `/` or `../../..` can only ever reach the root itself. The kernel's openat2
    RESOLVE_IN_ROOT does the same in one call, but we must create missing parents on the
    way, which needs the per-component walk anyway; this works on any Linux kernel.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def open_dir(self, parts: list[str], *, create: bool) -> int | None:
        """An O_PATH fd of directory `parts` (the caller closes it), or None if missing.

        With `create`, missing directories are made (mode 0755, owned by the caller) on the way.
        """
        try:
            return open_dir_in_root(self.fd, parts, create=create)
        except (RootfsPathError, NotADirectoryError) as exc:
            raise UnsafePathError(str(exc.strerror if isinstance(exc, OSError) else exc)) from None

    @staticmethod
    def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
        """lstat of `name` in `dir_fd`, or None if there is nothing there."""
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @staticmethod
    def remove_at(dir_fd: int, name: str, st: os.stat_result) -> None:
        """Remove `name` from `dir_fd` (a directory with all below it), never following links."""
        if stat.S_ISDIR(st.st_mode):
            # rmtree with dir_fd walks by file descriptor and never follows symlinks.
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
