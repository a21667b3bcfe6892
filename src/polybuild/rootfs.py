"""Resolve paths inside a root filesystem as if chrooted there, one component at a time by fd.

Image content is untrusted: `/etc/passwd` may be a symlink to `/etc/shadow` or to `../..`,
and a running step may swap a directory for a symlink while we look. Every lookup here walks
the path by file descriptor (O_PATH | O_NOFOLLOW per component), follows symlinks as the
kernel would inside a chroot (absolute targets restart at the root, `..` stops there), and so
never reaches anything outside the root. (openat2 RESOLVE_IN_ROOT does the lookup in one call,
but creating missing parents and the lenient lookups need the per-component walk anyway.)
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from polybuild.errors import RootfsPathError

__all__ = [
    "DIR_FLAGS",
    "RootDir",
    "RootfsPathError",
    "clean_path",
    "lookup_path",
    "lstat_at",
    "open_dir_in_root",
    "proc_path",
    "read_text_in_root",
    "remove_at",
    "resolve_in_root",
    "resolve_parts",
]

_MAX_SYMLINKS = 40  # as the kernel's MAXSYMLINKS: a longer chain is a loop or an attack

DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Told each component a lenient walk meets: its components from the root and its lstat
# (None when nothing is there, or it lies below a non-directory).
EntryHook = Callable[[list[str], os.stat_result | None], None]


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


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """lstat of `name` in `dir_fd`, or None when nothing is there."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str, st: os.stat_result) -> None:
    """Remove `name` from `dir_fd` (a directory with all below it), never following links."""
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd walks by file descriptor and never follows symlinks.
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _walk(
    root_fd: int,
    parts: Sequence[str],
    *,
    follow_last: bool = True,
    strict: bool = False,
    create: bool = False,
    on_created: Callable[[int], None] | None = None,
    on_entry: EntryHook | None = None,
    shown: str | None = None,
) -> tuple[int, list[str], list[str]] | None:
    """Walk `parts` below `root_fd`: (fd of the last directory reached, its components, rest).

    The returned O_PATH fd is the caller's to close. `rest` holds what lies past that
    directory: the last component when it is not a directory (or a symlink left unfollowed
    because not `follow_last`), or a missing component and what follows it. `..` in `rest`
    takes its last component back, so the walk goes on from a directory again (as a lexical
    lookup would). With `strict`, a missing component answers None instead (or is made, 0755,
    with `create`; `on_created` gets each new directory's fd) and a non-directory on the way
    raises NotADirectoryError. A symlink loop raises RootfsPathError; errors name the path
    as `shown` (else the components joined).
    """
    if shown is None:
        shown = "/" + "/".join(p for p in parts if p)
    stack = [os.dup(root_fd)]
    names: list[str] = []
    rest: list[str] = []
    pending = deque(parts)
    followed = 0
    try:
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if rest:
                    rest.pop()
                elif names:
                    os.close(stack.pop())
                    names.pop()
                continue
            if rest:  # below a missing component or a non-directory: nothing is there
                rest.append(part)
                if on_entry is not None:
                    on_entry([*names, *rest], None)
                continue
            current = stack[-1]
            st = lstat_at(current, part)
            if on_entry is not None:
                on_entry([*names, part], st)
            if st is None:
                if not strict:
                    rest.append(part)
                    continue
                if not create:
                    return None
                os.mkdir(part, 0o755, dir_fd=current)
                stack.append(os.open(part, DIR_FLAGS, dir_fd=current))
                names.append(part)
                if on_created is not None:
                    on_created(stack[-1])
                continue
            if stat.S_ISLNK(st.st_mode) and (follow_last or pending):
                followed += 1
                if followed > _MAX_SYMLINKS:
                    raise RootfsPathError(f"too many levels of symbolic links in {shown}")
                target = os.readlink(part, dir_fd=current)
                if target.startswith("/"):
                    while names:
                        os.close(stack.pop())
                        names.pop()
                pending.extendleft(reversed(target.split("/")))
                continue
            if not stat.S_ISDIR(st.st_mode):
                if strict:
                    raise NotADirectoryError(errno.ENOTDIR, f"{shown}: {part!r} is not a directory")
                rest.append(part)
                continue
            # O_NOFOLLOW|O_DIRECTORY: if it was swapped for a symlink since the lstat, fail.
            stack.append(os.open(part, DIR_FLAGS, dir_fd=current))
            names.append(part)
        return stack.pop(), names, rest
    finally:
        for fd in stack:
            os.close(fd)


def open_dir_in_root(
    root_fd: int,
    parts: Sequence[str],
    *,
    create: bool = False,
    on_created: Callable[[int], None] | None = None,
) -> int | None:
    """An O_PATH fd of directory `parts` below `root_fd` (the caller closes it), or None.

    With `create`, missing directories are made (0755) and `on_created` gets each new one's
    fd. Raises RootfsPathError for a symlink loop and NotADirectoryError when a component is
    not a directory.
    """
    walked = _walk(root_fd, parts, strict=True, create=create, on_created=on_created)
    return None if walked is None else walked[0]


def resolve_parts(
    root_fd: int,
    path: str,
    *,
    follow_last: bool = True,
    on_entry: EntryHook | None = None,
) -> list[str]:
    """The components of `path` below `root_fd`, with symlinks resolved inside the root.

    Missing components are allowed (the result may not exist yet); `on_entry` sees every
    component looked at and may raise to refuse it.
    """
    walked = _walk(
        root_fd, path.split("/"), follow_last=follow_last, on_entry=on_entry, shown=repr(path)
    )
    assert walked is not None  # only a strict walk answers "missing"
    fd, names, rest = walked
    os.close(fd)
    return [*names, *rest]


def resolve_in_root(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """The host path for `path` inside `root`, with symlinks resolved inside `root`.

    `..` never climbs above the root and absolute symlink targets start at the root.
    Missing components are allowed (the result may not exist yet).
    """
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return root.joinpath(*clean_path(path))  # nothing there to follow
    try:
        return root.joinpath(*resolve_parts(root_fd, path, follow_last=follow_last))
    finally:
        os.close(root_fd)


def read_text_in_root(root: Path, path: str, limit: int = 4 << 20) -> str | None:
    """The text of a regular file inside `root`, or None when it is missing or not a file."""
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        walked = _walk(root_fd, path.split("/"), shown=repr(path))
    finally:
        os.close(root_fd)
    assert walked is not None  # only a strict walk answers "missing"
    parent, _, rest = walked
    try:
        if len(rest) != 1:  # a directory, or a missing parent
            return None
        # O_PATH first: opening a device node a step planted (at /etc/passwd, say) could
        # make the host's driver act; only a regular file is then opened for reading.
        handle = os.open(rest[0], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError:
        return None
    finally:
        os.close(parent)
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return None
        fd = os.open(proc_path(handle), os.O_RDONLY | os.O_CLOEXEC)
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


class RootDir:
    """A directory used as a root (an image being unpacked); every lookup stays inside it."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def open_dir(self, parts: list[str], *, create: bool) -> int | None:
        """An O_PATH fd of directory `parts` (the caller closes it), or None if missing.

        With `create`, missing directories are made (mode 0755, owned by the caller) on the
        way. Raises RootfsPathError (a loop) or NotADirectoryError as open_dir_in_root.
        """
        return open_dir_in_root(self.fd, parts, create=create)

    lstat_at = staticmethod(lstat_at)
    remove_at = staticmethod(remove_at)
