"""fsutil's `Stat` of one file as BuildKit's fsutil makes it: Go `os.FileMode` bits for the
mode (both ways), nanosecond mtimes, Go's device numbers, xattrs; facts from fsutil's
stat.go and stat_unix.go (the version BuildKit v0.32.2 requires)."""

from __future__ import annotations

import errno
import os
import stat

from polybuild.buildkit._proto.fsutil_stat_pb2 import Stat

# Go's os.FileMode type and special bits (io/fs).
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
MODE_IRREGULAR = 1 << 19
# Bits that make a mode something other than a regular file (Go's os.ModeType).
MODE_TYPE = (
    MODE_DIR | MODE_SYMLINK | MODE_NAMED_PIPE | MODE_SOCKET | MODE_DEVICE | MODE_CHAR_DEVICE
) | MODE_IRREGULAR

_TYPE_BITS = {
    stat.S_IFDIR: MODE_DIR,
    stat.S_IFLNK: MODE_SYMLINK,
    stat.S_IFBLK: MODE_DEVICE,
    stat.S_IFCHR: MODE_DEVICE | MODE_CHAR_DEVICE,
    stat.S_IFIFO: MODE_NAMED_PIPE,
    stat.S_IFSOCK: MODE_SOCKET,
    stat.S_IFREG: 0,
}
_SPECIAL_BITS = (
    (stat.S_ISUID, MODE_SETUID),
    (stat.S_ISGID, MODE_SETGID),
    (stat.S_ISVTX, MODE_STICKY),
)

# fsutil skips macOS' own attributes.
_SKIPPED_XATTR_PREFIX = "com.apple."


def go_file_mode(st_mode: int) -> int:
    """Go's `os.FileMode` for a POSIX `st_mode` (what Go's os.Lstat reports)."""
    mode = st_mode & 0o777 | _TYPE_BITS.get(stat.S_IFMT(st_mode), 0)
    for posix_bit, go_bit in _SPECIAL_BITS:
        if st_mode & posix_bit:
            mode |= go_bit
    return mode


def posix_mode(go_mode: int) -> int:
    """The POSIX `st_mode` for a Go `os.FileMode` (a mode without type bits is a regular file)."""
    if go_mode & MODE_DIR:
        kind = stat.S_IFDIR
    elif go_mode & MODE_SYMLINK:
        kind = stat.S_IFLNK
    elif go_mode & MODE_DEVICE:
        kind = stat.S_IFCHR if go_mode & MODE_CHAR_DEVICE else stat.S_IFBLK
    elif go_mode & MODE_NAMED_PIPE:
        kind = stat.S_IFIFO
    elif go_mode & MODE_SOCKET:
        kind = stat.S_IFSOCK
    else:
        kind = stat.S_IFREG
    mode = kind | go_mode & 0o777
    for posix_bit, go_bit in _SPECIAL_BITS:
        if go_mode & go_bit:
            mode |= posix_bit
    return mode


def can_request_data(go_mode: int) -> bool:
    """Whether the receiver may ask for the entry's content (fsutil: no type bit set)."""
    return go_mode & MODE_TYPE == 0


def go_major(device: int) -> int:
    """The major number of a device as fsutil computes it (its own formula, not glibc's)."""
    return (device >> 8) & 0xFFF


def go_minor(device: int) -> int:
    """The minor number of a device as fsutil computes it."""
    return (device & 0xFF) | ((device >> 12) & 0xFFF00)


def read_xattrs(path: str) -> dict[str, bytes]:
    """The extended attributes of `path` (not following a symlink), none when the file
    system has none; an attribute that vanishes while read is left out, as fsutil does."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    found: dict[str, bytes] = {}
    for name in names:
        if name.startswith(_SKIPPED_XATTR_PREFIX):
            continue
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return found


def make_stat(
    path: str, st: os.stat_result, *, linkname: str = "", xattrs: dict[str, bytes] | None = None
) -> Stat:
    """The Stat fsutil sends for an lstat result: `path` relative with `/`, `linkname` a
    symlink's target or an earlier hard link's path. A socket loses its type bit, as in
    fsutil (which then sends it as an empty regular file). Owners are sent as 0:0, as
    BuildKit's client maps every local mount (prepareSyncedFiles' resetUIDAndGID): the
    context's files belong to root in the build whoever owns them here."""
    is_dir = stat.S_ISDIR(st.st_mode)
    message = Stat(
        path=path,
        mode=go_file_mode(st.st_mode) & ~MODE_SOCKET,
        uid=0,
        gid=0,
        size=0 if is_dir else st.st_size,
        modTime=st.st_mtime_ns,
        linkname=linkname,
    )
    if not is_dir:
        # fsutil tests st_mode against S_IFBLK|S_IFCHR bitwise, so every non-directory gets
        # the numbers of its st_rdev (0 but for devices).
        message.devmajor = go_major(st.st_rdev)
        message.devminor = go_minor(st.st_rdev)
    if xattrs:
        message.xattrs.update(xattrs)
    return message
