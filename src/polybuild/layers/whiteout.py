"""Whiteouts of a layer: what they hide in MERGED mode, how they are kept in OVERLAY mode.

A whiteout (".wh.NAME") hides NAME of the lower layers and an opaque whiteout (".wh..wh..opq")
everything below its directory, never what its own layer wrote. MERGED applies them by
deleting; OVERLAY keeps them as an overlayfs lower directory does: a char 0/0 device for
NAME, the opaque xattr on the directory.
"""

from __future__ import annotations

import enum
import os
import stat

from polybuild.errors import UnpackError
from polybuild.layers.tarwriter import OPAQUE_WHITEOUT, WHITEOUT_PREFIX
from polybuild.rootfs import RootDir, proc_path

__all__ = ["UnpackMode", "Whiteouts", "is_whiteout", "is_whiteout_device"]


class UnpackMode(enum.StrEnum):
    """MERGED applies whiteouts by deleting; OVERLAY keeps them as an overlayfs lower dir."""

    MERGED = "merged"
    OVERLAY = "overlay"


def is_whiteout(base: str) -> bool:
    """Whether an entry's last name component makes it a whiteout (of any kind)."""
    return base.startswith(WHITEOUT_PREFIX)


def is_whiteout_device(st: os.stat_result) -> bool:
    """Whether `st` is an overlayfs whiteout: a char device 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class Whiteouts:
    """Applies one layer's whiteouts; knows the paths this layer wrote, which they never hide."""

    def __init__(self, root: RootDir, mode: UnpackMode, opaque_xattr: str) -> None:
        self.root = root
        self.mode = mode
        self.opaque_xattr = opaque_xattr
        # (dev, inode of parent dir, name): whiteouts only hide what lower layers put there.
        self.written: set[tuple[int, int, str]] = set()

    def wrote(self, parent: os.stat_result, base: str) -> None:
        """Record that this layer wrote `base` in the directory `parent` describes."""
        self.written.add((parent.st_dev, parent.st_ino, base))

    def replaced(self, path: bytes, was_whiteout: bool) -> None:
        """A directory at `path` replaced an overlay whiteout: it must hide what is below."""
        if was_whiteout and self.mode is UnpackMode.OVERLAY:
            os.setxattr(path, self.opaque_xattr, b"y")

    def apply(self, name: str, parts: list[str]) -> None:
        """Apply whiteout entry `name` (its clean path `parts`)."""
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
