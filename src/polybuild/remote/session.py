"""The client's long-lived session with one node for one build: the handshake, a solve with
its context sent by content, the node's progress, and the result's blobs fetched by digest.

Every failure of the link (ssh ends, the node dies, the conversation breaks) is a
NodeUnreachableError naming the endpoint; a build the node ran and that failed is the
node's error class when it is one of ours (a failed step a StepFailedError with its
Dockerfile excerpt, as a local build's), else a RemoteError carrying the node's message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from polybuild import errors
from polybuild._version import __version__
from polybuild.errors import NodeUnreachableError, PolybuildError, RemoteError, StepFailedError
from polybuild.remote.channel import Channel
from polybuild.remote.client import CAPABILITIES, STDOUT_HINT, Opener, check_hello
from polybuild.remote.frames import CHUNK_SIZE
from polybuild.remote.messages import (
    PROTOCOL_VERSION,
    BlobRequest,
    BlobWanted,
    Bye,
    Chunk,
    ContextWanted,
    Error,
    Hello,
    ImageOffer,
    ImageWanted,
    Message,
    Progress,
    Solve,
    SolveDone,
)
from polybuild.remote.process import printable


class Link(Protocol):
    """What a session runs over: a ProcessLink (ssh or a local child) in production."""

    endpoint: str
    channel: Channel

    async def failure(self, fallback: str, *, hint: str | None = None) -> NodeUnreachableError:
        """The error for a broken conversation, explained by the child's stderr if it can."""

    async def close(self, *, grace: float = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class LocalImage:
    """A base image of the client's store for a node that lacks it: the exact manifest and
    config bytes, and the layer digests the node may then ask for."""

    manifest: bytes
    manifest_media_type: str
    config: bytes
    layers: frozenset[str]


class Blob(Protocol):
    def read(self, n: int = -1) -> bytes: ...

    def close(self) -> None: ...


class ImageSource(Protocol):
    """How the client answers a node's FROM: its store (`find` and `open`, called in a
    thread) and its resolution of a reference to a digest (`pin`, once per build)."""

    def find(self, ref: str, platform: str) -> LocalImage | None:
        """The image's variant for `platform`, or None when this store lacks it."""

    def open(self, digest: str) -> Blob:
        """A blob of this store, verified as it is read."""

    async def pin(self, ref: str) -> str:
        """`ref` with the digest it resolves to now, the same for every node of the build;
        "" when it cannot be resolved here (the node then resolves it itself)."""


class Sink(Protocol):
    """Where a fetched blob goes (the content store's verifying writer)."""

    def write(self, data: bytes) -> int: ...


@dataclass(frozen=True, slots=True)
class Solved:
    """A node's result and what the context cost: files and bytes sent to it."""

    done: SolveDone
    files_sent: int
    bytes_sent: int


MAX_EXCERPT = 64 << 10  # characters of a failed step's Dockerfile excerpt shown
MAX_LINE = 400  # characters shown of one line of the node's error text


class Session:
    """One open session; use `open_session`, then `solve`, `fetch`, and `close` (always)."""

    def __init__(self, link: Link, label: str = "") -> None:
        self.link = link
        self.endpoint = link.endpoint
        self.label = label or f"node {link.endpoint}"  # how the node's errors name it
        self._next_id = 0

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _send(self, message: Message) -> None:
        try:
            await self.link.channel.send(message)
        except OSError as exc:
            raise await self.link.failure(f"the connection broke: {exc}") from exc

    async def _receive(self, request_id: int) -> Message:
        """The next message for `request_id`; an Error for it is the node's failure."""
        try:
            message = await self.link.channel.receive()
        except OSError as exc:
            raise await self.link.failure(f"the connection broke: {exc}") from exc
        except RemoteError as exc:
            raise await self.link.failure(f"the conversation broke: {exc}") from exc
        if message is None:
            raise await self.link.failure("the connection closed in the middle of a build")
        if isinstance(message, Error):
            hint = printable(message.hint) if message.hint else None
            if message.id == 0:  # the node gave up on the whole session
                raise NodeUnreachableError(self.endpoint, printable(message.message), hint=hint)
            # Lines kept (a failed step's last output follows its error); escapes are not.
            text = printable_lines(message.message, 4000)
            if message.kind == "StepFailedError":
                raise self._step_failed(message, text, hint)
            raise node_error(message.kind, f"{self.label}: {text}", hint)
        return message

    def _step_failed(self, message: Error, text: str, hint: str | None) -> StepFailedError:
        """A step that failed on the node, reported as a local one (its message as is, its
        Dockerfile excerpt); the hint says which node ran it."""
        name = self.label[1:-1] if self.label.startswith("[") else ""  # RemoteDriver's [NODE]
        where = (
            f"the build ran on node {name} ({self.endpoint})"
            if name
            else f"the build ran on node {self.endpoint}"
        )
        error = StepFailedError(text, hint=f"{hint}; {where}" if hint else where)
        error.node = name or self.endpoint
        error.step = printable(message.step, 2000)
        error.lines = message.lines
        if message.excerpt:
            error.excerpt = printable_lines(message.excerpt, MAX_EXCERPT) + "\n"
        return error

    async def solve(
        self,
        solve: Solve,
        files: Mapping[str, Path],
        on_progress: Callable[[Progress], None],
        on_sent: Callable[[int, int], None] | None = None,
        images: ImageSource | None = None,
    ) -> Solved:
        """Run `solve` on the node. `files` maps each context file's digest to where it is
        here; only the ones the node asks for are read and sent, then `on_sent(files,
        bytes)` says how many. The node's FROM images are answered from `images`: the
        client's own image (unless `--pull`), else the reference pinned to a digest."""
        solve_id = solve.id
        await self._send(solve)
        wanted = await self._receive(solve_id)
        if not isinstance(wanted, ContextWanted) or wanted.id != solve_id:
            raise self._unexpected(wanted)
        unknown = [d for d in wanted.digests if d not in files]
        if unknown or len(set(wanted.digests)) != len(wanted.digests):
            raise NodeUnreachableError(self.endpoint, "the node asked for files not in the build")
        sent = 0
        for index, digest in enumerate(wanted.digests):
            sent += await self._send_file(index + 1, files[digest])
        if on_sent is not None:
            on_sent(len(wanted.digests), sent)
        offered: set[str] = set()  # the layers of images offered: all the node may ask for
        while True:
            message = await self._receive(solve_id)
            if isinstance(message, Progress) and message.id == solve_id:
                on_progress(message)
            elif isinstance(message, SolveDone) and message.id == solve_id:
                return Solved(message, len(wanted.digests), sent)
            elif isinstance(message, ImageWanted) and message.id == solve_id:
                # --pull refreshes tags; an image by digest (an OCI layout's) is the same
                # bytes wherever it comes from, so the client's own copy is offered.
                fresh = solve.pull and "@" not in message.ref
                found = None if fresh else await asyncio.to_thread(self._find, images, message)
                offered |= found.layers if found is not None else set()
                pinned = (
                    "" if found is not None or images is None else await images.pin(message.ref)
                )
                await self._send(_offer(message, found, pinned))
            elif isinstance(message, BlobWanted) and message.id == solve_id:
                await self._send_blobs(message, offered, images)
            else:
                raise self._unexpected(message)

    @staticmethod
    def _find(images: ImageSource | None, wanted: ImageWanted) -> LocalImage | None:
        if images is None:
            return None
        try:
            return images.find(wanted.ref, wanted.platform)
        except PolybuildError:  # a reference or platform this store cannot even look up
            return None

    async def _send_blobs(
        self, wanted: BlobWanted, offered: set[str], images: ImageSource | None
    ) -> None:
        """Send the layers of offered images the node asked for; any other blob of this
        store is not the node's to read."""
        strange = [d for d in wanted.digests if d not in offered]
        if strange or images is None:
            raise NodeUnreachableError(
                self.endpoint, f"the node asked for a blob it was not offered: {strange[:1]}"
            )
        for index, digest in enumerate(wanted.digests):
            blob = await asyncio.to_thread(images.open, digest)
            try:
                await self._send_stream(wanted.first_stream + index, blob)
            finally:
                blob.close()

    async def _send_file(self, stream: int, path: Path) -> int:
        """Send one file as Chunk stream `stream`; returns how many bytes went."""
        with path.open("rb") as file:
            return await self._send_stream(stream, file)

    async def _send_stream(self, stream: int, source: Blob) -> int:
        """Send what `source` reads as Chunk stream `stream`; returns how many bytes went."""
        sent = 0
        data = await asyncio.to_thread(source.read, CHUNK_SIZE)
        while True:
            following = await asyncio.to_thread(source.read, CHUNK_SIZE) if data else b""
            await self._send(Chunk(stream, data, last=not following))
            sent += len(data)
            if not following:
                return sent
            data = following

    async def fetch(self, digests: tuple[str, ...], open_sink: Callable[[int], Sink]) -> None:
        """Fetch blobs of the node's store; `open_sink(i)` gives where blob i goes (the
        caller verifies and commits it once this returns)."""
        if not digests:
            return
        request_id = self._id()
        await self._send(BlobRequest(request_id, digests))
        for index in range(len(digests)):
            sink = open_sink(index)
            while True:
                chunk = await self._receive(request_id)
                if not isinstance(chunk, Chunk) or chunk.stream != index + 1:
                    raise self._unexpected(chunk)
                await asyncio.to_thread(sink.write, chunk.data)
                if chunk.last:
                    break

    def new_solve_id(self) -> int:
        return self._id()

    def _unexpected(self, message: Message) -> NodeUnreachableError:
        return NodeUnreachableError(
            self.endpoint, f"unexpected answer from the node: {type(message).__name__}"
        )

    async def close(self, *, grace: float | None = None) -> None:
        """Say bye and end the link (at once when `grace` is 0: the build failed)."""
        if grace == 0:
            await self.link.close(grace=0)
            return
        with contextlib.suppress(OSError, RemoteError):  # a node gone cannot be told
            await self.link.channel.send(Bye())
        await self.link.close()


def _offer(wanted: ImageWanted, found: LocalImage | None, pinned: str) -> ImageOffer:
    if found is None:
        return ImageOffer(wanted.id, wanted.request, found=False, pinned=pinned)
    return ImageOffer(
        wanted.id,
        wanted.request,
        found=True,
        manifest=found.manifest,
        manifest_media_type=found.manifest_media_type,
        config=found.config,
    )


def printable_lines(text: str, limit: int) -> str:
    """Text from the node for a terminal: its first `limit` characters, lines kept, other
    control characters shown as "?"."""
    return "\n".join(printable(line, MAX_LINE) for line in text[:limit].splitlines())


def node_error(kind: str, message: str, hint: str | None) -> PolybuildError:
    """The error a build failed with on the node, as the same class here when it is one of
    ours that takes a plain message (so exit codes match a local build), else RemoteError."""
    found = getattr(errors, kind, None) if kind.endswith("Error") else None
    if isinstance(found, type) and issubclass(found, PolybuildError):
        for cls in found.__mro__:
            if (
                issubclass(cls, PolybuildError)
                and cls.__init__ is PolybuildError.__init__
                and cls.__str__ is PolybuildError.__str__
                and cls is not PolybuildError
            ):
                return cls(message, hint=hint)
    return RemoteError(message, hint=hint)


async def open_session(
    endpoint: str, opener: Opener, *, timeout: float = 30.0, label: str = ""
) -> Session:
    """Connect and agree on the protocol within `timeout` seconds (NodeUnreachableError);
    `label` names the node in the errors of its builds (default: `node ENDPOINT`)."""
    try:
        async with asyncio.timeout(timeout):
            link = await opener()
            try:
                await link.channel.send(Hello(PROTOCOL_VERSION, __version__, CAPABILITIES))
                first = await link.channel.receive()
            except RemoteError as exc:
                error = await link.failure(f"not the polybuild protocol: {exc}", hint=STDOUT_HINT)
                await link.close(grace=0)
                raise error from exc
            except BaseException:
                await link.close(grace=0)
                raise
    except TimeoutError as exc:
        raise NodeUnreachableError(endpoint, f"no answer within {timeout:g} s") from exc
    if first is None:
        error = await link.failure("the connection closed before the node answered")
        await link.close(grace=0)
        raise error
    try:
        check_hello(first, link.endpoint)
    except NodeUnreachableError:
        await link.close(grace=0)
        raise
    return Session(link, label)
