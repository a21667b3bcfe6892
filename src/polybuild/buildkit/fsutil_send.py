"""The client's side of BuildKit's FileSync.DiffCopy: an fsutil sender streaming a local
directory to the daemon over any stream of fsutil Packets (fsutil's send.go protocol).

The sender lists every entry as a `PACKET_STAT` (its index in the listing is its ID), ends the
listing with an empty one, answers each `PACKET_REQ{ID}` for a listed regular file with
`PACKET_DATA` chunks and an empty `PACKET_DATA`, and answers the daemon's `PACKET_FIN` with
its own. Requests are served while the listing is still being sent, as the daemon sends
them. The daemon is trusted only with what was listed: a request for anything else, a file
asked for twice, or any other packet ends the transfer with `PACKET_ERR` and a RemoteError.
All file system work runs in worker threads so the session keeps answering health checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import stat
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import unquote_to_bytes

from polybuild.buildkit import fsutil_beneath as beneath
from polybuild.buildkit._proto.fsutil_wire_pb2 import Packet
from polybuild.buildkit.fsutil_filter import PathFilter, include_with_followpaths
from polybuild.buildkit.fsutil_walk import DirectoryWalk, FileSource, Listed, open_root
from polybuild.errors import RemoteError

__all__ = ["CHUNK_SIZE", "PacketStream", "filters_from_metadata", "send_directory"]

CHUNK_SIZE = 32 * 1024  # fsutil's copy buffer: one DATA packet at most
_CHUNKS_PER_READ = 8  # chunks read in one trip to a thread
_LISTED_PER_BATCH = 256  # entries listed in one trip to a thread
_FILE_SENDERS = 4  # files sent at once, as fsutil
_FILES_PER_READ = 64  # small files read in one trip to a thread...
_BYTES_PER_READ = 1024 * 1024  # ...up to about this much by their listed sizes

_T = TypeVar("_T")


class PacketStream(Protocol):
    """The DiffCopy call as the sender sees it."""

    async def send(self, packet: Packet) -> None: ...

    async def receive(self) -> Packet | None:
        """The next packet from the daemon; None when it closed its side."""
        ...


async def send_directory(
    stream: PacketStream,
    root: Path,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    followpaths: Sequence[str] = (),
) -> None:
    """Send directory `root` (symlinks in its own path resolved) filtered by fsutil's
    include/exclude patterns and followpaths; returns once the daemon's FIN is answered.
    Raises RemoteError when the transfer fails (after telling the daemon, unless it was the
    daemon that failed or left)."""
    await _Transfer(stream).run(root, tuple(include), tuple(exclude), tuple(followpaths))


def filters_from_metadata(
    metadata: Sequence[tuple[str, str | bytes]],
) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(dir-name, include-patterns, exclude-patterns, followpaths) from a DiffCopy call's
    metadata as BuildKit's filesync sends it: repeated keys give several values, and the
    values of a key flagged `<key>-encoded: 1` are URL-query-escaped (BuildKit escapes
    them all when one is not ASCII)."""
    values: dict[str, list[str]] = {}
    for key, value in metadata:
        text = value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")
        values.setdefault(key.lower(), []).append(text)

    def decoded(key: str) -> tuple[str, ...]:
        found = values.get(key, [])
        flag = values.get(key + "-encoded", [""])[0]
        if flag in ("1", "t", "T", "true", "TRUE", "True"):  # Go's strconv.ParseBool
            return tuple(_query_unescape(item) for item in found)
        return tuple(found)

    names = decoded("dir-name")
    return (
        names[0] if names else "",
        decoded("include-patterns"),
        decoded("exclude-patterns"),
        decoded("followpaths"),
    )


def _query_unescape(text: str) -> str:
    """Go's url.QueryUnescape, whose error BuildKit ignores (the value becomes empty)."""
    for index, char in enumerate(text):
        if char == "%" and not all(
            c in "0123456789abcdefABCDEF" for c in text[index + 1 : index + 3].ljust(2, "x")
        ):
            return ""
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8", "surrogateescape")


def _next_batch(entries: Generator[Listed, None, None]) -> list[Listed]:
    return list(itertools.islice(entries, _LISTED_PER_BATCH))


def _local_error(exc: BaseException, what: str) -> RemoteError:
    if isinstance(exc, RemoteError):
        return exc
    if isinstance(exc, OSError):
        return RemoteError(f"cannot send {what}: {exc.strerror or exc}")
    return RemoteError(f"cannot send {what}: {exc}")


class _Transfer:
    """One DiffCopy exchange: the listing, the requested files, FIN."""

    def __init__(self, stream: PacketStream) -> None:
        self._stream = stream
        self._send_lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(_FILE_SENDERS + 1, thread_name_prefix="fsutil-send")
        self._root_fd = -1
        self._entries: Generator[Listed, None, None] | None = None
        self._files: dict[int, FileSource] = {}
        self._requested: set[int] = set()
        self._open_fds: set[int] = set()
        self._queue: asyncio.Queue[tuple[int, FileSource]] = asyncio.Queue()
        self._listed_all = False
        self._aborted = False

    async def run(
        self,
        root: Path,
        include: tuple[str, ...],
        exclude: tuple[str, ...],
        followpaths: tuple[str, ...],
    ) -> None:
        try:
            try:
                entries = await self._blocking(self._prepare, root, include, exclude, followpaths)
            except (OSError, RemoteError) as exc:
                raise await self._abort(_local_error(exc, str(root))) from None
            await self._exchange(entries)
        finally:
            await asyncio.shield(asyncio.to_thread(self._finish))

    def _prepare(
        self,
        root: Path,
        include: tuple[str, ...],
        exclude: tuple[str, ...],
        followpaths: tuple[str, ...],
    ) -> Generator[Listed, None, None]:
        self._root_fd = open_root(root)
        patterns = include_with_followpaths(self._root_fd, include, followpaths)
        self._entries = DirectoryWalk(self._root_fd, PathFilter(patterns, exclude)).entries()
        return self._entries

    def _finish(self) -> None:
        """Once no thread uses them: the walk's and the files' descriptors closed."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._entries is not None:
            self._entries.close()
        for fd in self._open_fds:
            os.close(fd)
        self._open_fds.clear()
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    async def _blocking(self, function: Callable[..., _T], *args: object) -> _T:
        return await asyncio.wrap_future(self._executor.submit(function, *args))

    async def _exchange(self, entries: Generator[Listed, None, None]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                lister = group.create_task(self._list(entries))
                senders = [group.create_task(self._send_files()) for _ in range(_FILE_SENDERS)]
                await self._answer_requests()
                lister.cancel()
                for sender in senders:
                    sender.cancel()
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None

    async def _send(self, packet: Packet) -> None:
        async with self._send_lock:
            if packet.type == Packet.PACKET_STAT and not packet.HasField("stat"):
                self._listed_all = True
            await self._stream.send(packet)

    async def _abort(self, error: RemoteError) -> RemoteError:
        """Tell the daemon why the transfer stops (once); the error to raise."""
        if not self._aborted:
            self._aborted = True
            # The stream may be gone already; the error is what counts.
            with contextlib.suppress(Exception):
                await self._send(Packet(type=Packet.PACKET_ERR, data=str(error).encode()))
        return error

    async def _list(self, entries: Generator[Listed, None, None]) -> None:
        next_id = 0
        while True:
            try:
                batch = await self._blocking(_next_batch, entries)
            except (OSError, RemoteError) as exc:
                raise await self._abort(_local_error(exc, "the directory")) from None
            if not batch:
                break
            for entry in batch:
                if entry.source is not None:
                    self._files[next_id] = entry.source
                next_id += 1
                await self._send(Packet(type=Packet.PACKET_STAT, stat=entry.stat))
        await self._send(Packet(type=Packet.PACKET_STAT))

    async def _answer_requests(self) -> None:
        while True:
            packet = await self._stream.receive()
            if packet is None:
                raise RemoteError("the daemon closed the file transfer before it ended")
            if packet.type == Packet.PACKET_ERR:
                self._aborted = True
                message = packet.data.decode("utf-8", "replace")
                raise RemoteError(f"the daemon stopped the file transfer: {message}")
            if packet.type == Packet.PACKET_REQ:
                source = self._files.pop(packet.ID, None)
                if source is None:
                    raise await self._abort(RemoteError(self._bad_request(packet.ID)))
                self._requested.add(packet.ID)
                self._queue.put_nowait((packet.ID, source))
            elif packet.type == Packet.PACKET_FIN:
                if not self._listed_all:
                    raise await self._abort(
                        RemoteError("protocol violation: FIN before the listing ended")
                    )
                await self._queue.join()
                await self._send(Packet(type=Packet.PACKET_FIN))
                return
            else:
                try:
                    name = Packet.PacketType.Name(packet.type)
                except ValueError:
                    name = str(packet.type)
                raise await self._abort(
                    RemoteError(f"protocol violation: unexpected packet {name} from the receiver")
                )

    def _bad_request(self, file_id: int) -> str:
        if file_id in self._requested:
            return f"protocol violation: file {file_id} requested twice"
        return f"protocol violation: invalid file id {file_id} (not a listed regular file)"

    async def _send_files(self) -> None:
        """Send requested files; small ones several per trip to a thread (a trip costs more
        than reading a small file)."""
        while True:
            batch = [await self._queue.get()]
            listed = batch[0][1].size
            while (
                len(batch) < _FILES_PER_READ
                and listed < _BYTES_PER_READ
                and not self._queue.empty()
            ):
                batch.append(self._queue.get_nowait())
                listed += batch[-1][1].size
            try:
                await self._send_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _send_batch(self, batch: list[tuple[int, FileSource]]) -> None:
        try:
            starts = await self._blocking(self._start_files, [source for _, source in batch])
        except RemoteError as exc:
            raise await self._abort(exc) from None
        for (file_id, source), (first, more) in zip(batch, starts, strict=True):
            try:
                await self._stream_file(file_id, first, more)
            except OSError as exc:
                raise await self._abort(_local_error(exc, source.path)) from None
            await self._send(Packet(type=Packet.PACKET_DATA, ID=file_id))

    async def _stream_file(self, file_id: int, chunks: list[bytes], fd: int | None) -> None:
        """Send the chunks read, then the rest of the file while its descriptor is open."""
        while True:
            for chunk in chunks:
                await self._send(Packet(type=Packet.PACKET_DATA, ID=file_id, data=chunk))
            if fd is None:
                return
            chunks, done = await self._blocking(self._read, fd)
            if done:
                fd = None

    def _start_files(self, sources: list[FileSource]) -> list[tuple[list[bytes], int | None]]:
        """Each file opened and its first chunks read; its descriptor when there is more."""
        started: list[tuple[list[bytes], int | None]] = []
        for source in sources:
            if source.empty:
                started.append(([], None))
                continue
            try:
                fd = self._open(source)
                chunks, done = self._read(fd)
            except OSError as exc:
                raise _local_error(exc, source.path) from None
            started.append((chunks, None if done else fd))
        return started

    def _open(self, source: FileSource) -> int:
        fd = beneath.open_file(self._root_fd, source.parts)
        self._open_fds.add(fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (source.device, source.inode):
            self._close(fd)
            raise RemoteError(f"cannot send {source.path}: it was replaced after it was listed")
        return fd

    def _read(self, fd: int) -> tuple[list[bytes], bool]:
        """Up to a few chunks of the file, and whether it ended (then it is closed)."""
        chunks: list[bytes] = []
        try:
            while len(chunks) < _CHUNKS_PER_READ:
                chunk = os.read(fd, CHUNK_SIZE)
                if not chunk:
                    self._close(fd)
                    return chunks, True
                chunks.append(chunk)
        except OSError:
            self._close(fd)
            raise
        return chunks, False

    def _close(self, fd: int) -> None:
        self._open_fds.discard(fd)
        os.close(fd)


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that ended the transfer: ours first, then whatever else it was."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        item = pending.pop(0)
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
        else:
            leaves.append(item)
    for leaf in leaves:
        if isinstance(leaf, RemoteError):
            return leaf
    return leaves[0]
