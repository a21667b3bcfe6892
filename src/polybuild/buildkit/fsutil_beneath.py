"""Looking things up under a directory file descriptor without ever following a symlink or
leaving it: each path component is opened with O_NOFOLLOW relative to its parent."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# What says "no such path here" (a symlink or a file where a directory was expected too).
NOT_FOUND = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})


def split_path(path: str) -> tuple[str, ...]:
    """The components of a clean relative path (`.` has none)."""
    return tuple(part for part in path.split("/") if part and part != ".")


def open_dir(root_fd: int, parts: Sequence[str]) -> int:
    """A new descriptor of the directory `parts` under `root_fd`; OSError when a component is
    missing, not a directory, a symlink, or `..`."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if part == "..":
                raise OSError(errno.ENOENT, "a path leaving the directory", part)
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def lstat(root_fd: int, parts: Sequence[str]) -> os.stat_result | None:
    """The lstat of `parts` under `root_fd` (the directory itself for no parts), None when
    it does not exist there."""
    if not parts:
        return os.stat(root_fd)
    try:
        fd = open_dir(root_fd, parts[:-1])
    except OSError as exc:
        if exc.errno in NOT_FOUND:
            return None
        raise
    try:
        return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in NOT_FOUND:
            return None
        raise
    finally:
        os.close(fd)


def readlink(root_fd: int, parts: Sequence[str]) -> str:
    """The target of the symlink `parts` under `root_fd`."""
    fd = open_dir(root_fd, parts[:-1])
    try:
        return os.readlink(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)


def list_dir(root_fd: int, parts: Sequence[str]) -> list[str] | None:
    """The sorted names in directory `parts` under `root_fd`, None when it is not one."""
    try:
        fd = open_dir(root_fd, parts)
    except OSError as exc:
        if exc.errno in NOT_FOUND:
            return None
        raise
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)


def open_file(root_fd: int, parts: Sequence[str]) -> int:
    """A read-only descriptor of `parts` under `root_fd`, opened without following a symlink
    and without blocking on a FIFO (the caller checks what it is with fstat)."""
    fd = open_dir(root_fd, parts[:-1])
    try:
        return os.open(parts[-1], FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
