"""Reading a hostile root file system: an iterative walk that never follows a symbolic link,
and opens that refuse anything but a regular file inside the root.

The tree is an image's unpacked layers, not changing while it is scanned (no container runs
in it), but every name in it is chosen by whoever wrote the image. So: directories are opened
relative to their parent's descriptor with O_NOFOLLOW (a link is never entered, a loop is
never met), a file is opened only when lstat says it is regular (a FIFO, device or socket is
never opened: opening a device can act on hardware) and fstat confirms it after the open, and
a path looked up later (`open_beneath`) is resolved one component at a time the same way.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class FoundFile:
    """A regular file the walk met: its path inside the root ("/usr/bin/env"), its name, and
    the descriptor of its directory (open only until the walk moves on)."""

    path: str
    name: str
    dir_fd: int
    mode: int
    size: int


@dataclass(slots=True)
class _Frame:
    fd: int
    path: str
    pending: list[tuple[str, bool]]  # (name, is a directory), last one next


def _entries(fd: int) -> list[tuple[str, bool]]:
    """A directory's subdirectories and regular files, in reverse name order (popped in order)."""
    found: list[tuple[str, bool]] = []
    with os.scandir(fd) as listing:
        for entry in listing:
            if entry.is_dir(follow_symlinks=False):
                found.append((entry.name, True))
            elif entry.is_file(follow_symlinks=False):
                found.append((entry.name, False))
    found.sort(reverse=True)
    return found


def walk(root_fd: int, *, max_depth: int, warn: Callable[[str], None]) -> Iterator[FoundFile]:
    """Every regular file under the directory `root_fd`, depth first in name order.

    Iterative (no recursion limit); holds one descriptor per level of the current path, so
    `max_depth` also bounds the descriptors used. Symbolic links, FIFOs, devices and sockets are
    not yielded; a directory that cannot be opened or listed is reported through `warn`."""
    frames = [_Frame(root_fd, "", _entries(root_fd))]
    try:
        while frames:
            frame = frames[-1]
            if not frame.pending:
                frames.pop()
                if frame.fd != root_fd:
                    os.close(frame.fd)
                continue
            name, is_dir = frame.pending.pop()
            path = f"{frame.path}/{name}"
            if is_dir:
                if len(frames) > max_depth:
                    warn(f"{path}: deeper than {max_depth} directories, not scanned")
                    continue
                try:
                    fd = os.open(name, _DIR_FLAGS, dir_fd=frame.fd)
                except OSError as error:
                    warn(f"{path}: {error.strerror}")
                    continue
                try:
                    pending = _entries(fd)
                except OSError as error:
                    os.close(fd)
                    warn(f"{path}: {error.strerror}")
                    continue
                frames.append(_Frame(fd, path, pending))
                continue
            try:
                info = os.stat(name, dir_fd=frame.fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                yield FoundFile(path, name, frame.fd, info.st_mode, info.st_size)
    finally:
        for frame in frames:
            if frame.fd != root_fd:
                os.close(frame.fd)


def open_regular(dir_fd: int, name: str) -> int | None:
    """A read-only descriptor for the regular file `name` in `dir_fd`, or None when it is
    anything else (a link, FIFO, device, socket, directory) or cannot be opened."""
    try:
        if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return None
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def read_capped(fd: int, cap: int) -> bytes | None:
    """The whole content of an open file, or None when it is longer than `cap` bytes."""
    try:
        if os.fstat(fd).st_size > cap:
            return None
        chunks: list[bytes] = []
        total = 0
        while total <= cap:
            chunk = os.read(fd, min(_CHUNK, cap + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
    except OSError:
        return None
    return None  # grew past the cap while being read


def open_beneath(root_fd: int, path: str) -> int | None:
    """Open the regular file at `path` ("/var/lib/dpkg/info/bash.list") inside the root, one
    component at a time without following any link; None when any component is not a real
    directory or the file is not a regular file."""
    parts = path.strip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    current = root_fd
    try:
        for part in parts[:-1]:
            try:
                following = os.open(part, _DIR_FLAGS | os.O_PATH, dir_fd=current)
            except OSError:
                return None
            if current != root_fd:
                os.close(current)
            current = following
        return open_regular(current, parts[-1])
    finally:
        if current != root_fd:
            os.close(current)


def read_beneath(root_fd: int, path: str, cap: int) -> bytes | None:
    """The content of the regular file at `path` inside the root, or None (missing, not a
    regular file, reached through a link, or longer than `cap`)."""
    fd = open_beneath(root_fd, path)
    if fd is None:
        return None
    try:
        return read_capped(fd, cap)
    finally:
        os.close(fd)


def read_found(found: FoundFile, cap: int) -> bytes | None:
    """The content of a file the walk yielded, or None (changed kind, or longer than `cap`)."""
    if found.size > cap:
        return None
    fd = open_regular(found.dir_fd, found.name)
    if fd is None:
        return None
    try:
        return read_capped(fd, cap)
    finally:
        os.close(fd)
