"""The listing an fsutil sender streams: a directory walked as fsutil walks it (depth first,
names in byte order, lstat only, symlinks never followed), filtered, each entry as its Stat
and, for a file the receiver may ask for, where its content is."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from polybuild.buildkit import fsutil_beneath as beneath
from polybuild.buildkit._proto.fsutil_stat_pb2 import Stat
from polybuild.buildkit.fsutil_filter import PathFilter
from polybuild.buildkit.fsutil_stat import can_request_data, make_stat, read_xattrs
from polybuild.errors import RemoteError

_VANISHED = frozenset({errno.ENOENT, errno.ENOTDIR})


@dataclass(frozen=True, slots=True)
class FileSource:
    """Where a listed file's content is read from: its path under the root and the identity
    it had when listed. A socket is listed as an empty regular file (fsutil clears its type
    bit), so its content is empty."""

    parts: tuple[str, ...]
    device: int
    inode: int
    size: int
    empty: bool = False

    @property
    def path(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of the listing; `source` is set for what the receiver may request."""

    stat: Stat
    source: FileSource | None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A directory walked but not sent (filtered out): sent before its first child that is."""

    dir_fd: int
    name: str
    parts: tuple[str, ...]
    st: os.stat_result


class DirectoryWalk:
    """fsutil's walk of the directory open as `root_fd`, with its filter; iterate `entries()`
    (from one thread at a time). Hard links among the sent entries are found by device and
    inode: the later ones carry the first one's path as linkname."""

    def __init__(self, root_fd: int, path_filter: PathFilter) -> None:
        self._root_fd = root_fd
        self._filter = path_filter
        self._links: dict[tuple[int, int], str] = {}

    def entries(self) -> Generator[Listed, None, None]:
        yield from self._walk(self._root_fd, (), [], sent=True)

    def _walk(
        self, dir_fd: int, parts: tuple[str, ...], pending: list[_Pending], *, sent: bool
    ) -> Iterator[Listed]:
        try:
            names = sorted(os.listdir(dir_fd))
        except OSError as exc:
            if exc.errno in _VANISHED or (not sent and exc.errno == errno.EACCES):
                return
            raise _error(exc, parts) from None
        for name in names:
            child = (*parts, name)
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in _VANISHED:
                    continue
                raise _error(exc, child) from None
            is_dir = stat.S_ISDIR(st.st_mode)
            send, walk_in = (
                self._filter.decide("/".join(child), is_dir)
                if self._filter.filters
                else (True, is_dir)
            )
            if send:
                try:
                    listed = self._listed(dir_fd, name, child, st)
                except OSError as exc:
                    if exc.errno in _VANISHED:
                        continue
                    raise _error(exc, child) from None
                for ancestor in pending:
                    yield self._listed(ancestor.dir_fd, ancestor.name, ancestor.parts, ancestor.st)
                pending.clear()
                yield listed
            if walk_in:
                yield from self._walk_into(dir_fd, name, child, st, pending, sent=send)

    def _walk_into(
        self,
        dir_fd: int,
        name: str,
        parts: tuple[str, ...],
        st: os.stat_result,
        pending: list[_Pending],
        *,
        sent: bool,
    ) -> Iterator[Listed]:
        try:
            fd = os.open(name, beneath.DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in beneath.NOT_FOUND or (not sent and exc.errno == errno.EACCES):
                return
            raise _error(exc, parts) from None
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise RemoteError(f"{'/'.join(parts)} was replaced while it was being sent")
            marker = None if sent else _Pending(dir_fd, name, parts, st)
            if marker is not None:
                pending.append(marker)
            yield from self._walk(fd, parts, pending, sent=sent)
            if marker is not None and pending and pending[-1] is marker:
                pending.pop()
        finally:
            os.close(fd)

    def _listed(self, dir_fd: int, name: str, parts: tuple[str, ...], st: os.stat_result) -> Listed:
        path = "/".join(parts)
        _check_utf8(path, path)
        linkname = ""
        if stat.S_ISLNK(st.st_mode):
            linkname = os.readlink(name, dir_fd=dir_fd)
            _check_utf8(linkname, f"the target of {path}")
        elif not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            first = self._links.setdefault((st.st_dev, st.st_ino), path)
            if first != path:
                linkname = first
        # The directory's descriptor names it race-free; the name itself is not followed.
        xattrs = read_xattrs(f"/proc/self/fd/{dir_fd}/{name}")
        message = make_stat(path, st, linkname=linkname, xattrs=xattrs)
        source = None
        if can_request_data(message.mode):
            source = FileSource(
                parts, st.st_dev, st.st_ino, st.st_size, empty=stat.S_ISSOCK(st.st_mode)
            )
        return Listed(message, source)


def _error(exc: OSError, parts: tuple[str, ...]) -> RemoteError:
    return RemoteError(f"cannot send {'/'.join(parts) or '.'}: {exc.strerror or exc}")


def _check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RemoteError(
            f"cannot send {what!r}: the name is not valid UTF-8, which BuildKit's "
            "file transfer cannot carry"
        ) from None


def open_root(root: os.PathLike[str] | str) -> int:
    """A descriptor of the directory to send, symlinks in its own path resolved first (as
    fsutil's NewFS does)."""
    real = os.path.realpath(root)
    try:
        return os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise RemoteError(f"cannot send directory {root}: {exc.strerror}") from None
