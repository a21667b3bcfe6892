"""Path resolution inside a root directory as if chrooted there: nothing ever leads out of it."""

from __future__ import annotations

import os
import shutil
import stat
from collections import deque

from polybuild.errors import ImageError

__all__ = ["RootDir", "UnsafePathError", "clean_path"]

# Same bound as the kernel's MAXSYMLINKS: a longer chain is a loop or an attack.
_MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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
        stack = [os.dup(self.fd)]
        pending = deque(parts)
        followed = 0
        try:
            while pending:
                part = pending.popleft()
                if part in ("", "."):
                    continue
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                current = stack[-1]
                try:
                    st = os.stat(part, dir_fd=current, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        return None
                    os.mkdir(part, 0o755, dir_fd=current)
                    st = os.stat(part, dir_fd=current, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    followed += 1
                    if followed > _MAX_SYMLINKS:
                        raise UnsafePathError(f"too many levels of symbolic links in {parts}")
                    target = os.readlink(part, dir_fd=current)
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    pending.extendleft(reversed(target.split("/")))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise UnsafePathError(f"{'/'.join(parts)}: {part!r} is not a directory")
                # O_NOFOLLOW|O_DIRECTORY: if it was swapped for a symlink since the stat, fail.
                stack.append(os.open(part, _DIR_FLAGS, dir_fd=current))
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

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
