"""Thin ctypes wrappers for the Linux system calls Python's os module lacks (mount, umount2)."""

from __future__ import annotations

import ctypes
import os
from functools import cache

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2


@cache
def _libc() -> ctypes.CDLL:
    """The C library this process already runs on: dlopen(NULL) finds its symbols without
    `ctypes.util.find_library`, which imports subprocess and runs `ldconfig -p` twice."""
    return ctypes.CDLL(None, use_errno=True)


def mount(
    source: str, target: str | os.PathLike[str], fstype: str, flags: int = 0, data: str = ""
) -> None:
    """mount(2); raises OSError with the errno and the target on failure."""
    result = _libc().mount(
        source.encode(),
        os.fsencode(target),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or source} on {os.fsdecode(target)}: {os.strerror(err)}")


def umount(target: str | os.PathLike[str], flags: int = 0) -> None:
    """umount2(2); raises OSError on failure."""
    if _libc().umount2(os.fsencode(target), ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {os.fsdecode(target)}: {os.strerror(err)}")


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (owners of state left behind are checked this way)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
