"""Resolve paths inside a container's root filesystem as if chrooted there.

Image content is untrusted: `/etc/passwd` may be a symlink to `/etc/shadow` or to `../..`.
Every lookup here walks the path one component at a time, resolving symlinks against the
root rather than the host, so nothing outside the root is ever read or written.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from polybuild.errors import PolybuildError

_MAX_SYMLINKS = 40  # as the kernel's ELOOP limit


class RootfsPathError(PolybuildError):
    """A path inside a root filesystem cannot be resolved (a symlink loop, for example)."""


def resolve_in_root(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """The host path for `path` inside `root`, with symlinks resolved inside `root`.

    `..` never climbs above the root and absolute symlink targets start at the root.
    Missing components are allowed (the result may not exist yet).
    """
    parts = list(PurePosixPath("/", path).parts[1:])
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        is_last = not parts
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        except NotADirectoryError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode) and (follow_last or not is_last):
            links += 1
            if links > _MAX_SYMLINKS:
                raise RootfsPathError(f"too many levels of symbolic links in {path!r}")
            target = os.readlink(candidate)
            target_parts = PurePosixPath(target).parts
            if target.startswith("/"):
                resolved, target_parts = [], target_parts[1:]
            parts = [*target_parts, *parts]
            continue
        resolved.append(part)
    return root.joinpath(*resolved) if resolved else root


def read_text_in_root(root: Path, path: str, limit: int = 4 << 20) -> str | None:
    """The text of a regular file inside `root`, or None when it is missing or not a file."""
    host_path = resolve_in_root(root, path)
    try:
        # O_PATH first: opening a device node a step planted (at /etc/passwd, say) could
        # make the host's driver act; only a regular file is then opened for reading.
        handle = os.open(host_path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return None
        fd = os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    finally:
        os.close(handle)
    with os.fdopen(fd, "rb") as f:
        return f.read(limit).decode(errors="replace")


def lookup_path(root: Path, name: str, search_path: str) -> str | None:
    """The absolute in-container path of an executable found on `search_path`, like execvp."""
    if "/" in name:
        return name
    for directory in search_path.split(":"):
        if not directory:
            continue
        candidate = f"{directory.rstrip('/')}/{name}"
        host_path = resolve_in_root(root, candidate)
        if host_path.is_file() and os.access(host_path, os.X_OK):
            return candidate
    return None


DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir_in_root(
    root_fd: int,
    parts: Sequence[str],
    *,
    create: bool = False,
    on_created: Callable[[int], None] | None = None,
) -> int | None:
    """An O_PATH fd of directory `parts` below `root_fd` (the caller closes it), or None.

    The walk goes one component at a time by file descriptor with O_NOFOLLOW: symlinks are
    followed as the kernel would inside a chroot (absolute targets restart at the root,
    `..` stops there), so nothing outside the root is ever reached even if the tree changes
    under us. With `create`, missing directories are made (0755) and `on_created` gets each
    new one's fd. Raises RootfsPathError for a symlink loop and NotADirectoryError when a
    component is not a directory. (openat2 RESOLVE_IN_ROOT does the lookup in one call, but
    creating missing parents needs the per-component walk anyway.)
    """
    stack = [os.dup(root_fd)]
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
                fd = os.open(part, DIR_FLAGS, dir_fd=current)
                stack.append(fd)
                if on_created is not None:
                    on_created(fd)
                continue
            if stat.S_ISLNK(st.st_mode):
                followed += 1
                if followed > _MAX_SYMLINKS:
                    raise RootfsPathError(
                        f"too many levels of symbolic links in /{'/'.join(parts)}"
                    )
                target = os.readlink(part, dir_fd=current)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending.extendleft(reversed(target.split("/")))
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(
                    errno.ENOTDIR, f"/{'/'.join(parts)}: {part!r} is not a directory"
                )
            # O_NOFOLLOW|O_DIRECTORY: if it was swapped for a symlink since the stat, fail.
            stack.append(os.open(part, DIR_FLAGS, dir_fd=current))
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)
