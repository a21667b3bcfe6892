"""The node's side of a solve: take the client's context by content (into the directory the
node keeps for that context, `context_mirrors`), build with the node's own machinery (a
NodeBackend), stream its progress back, and serve the result's blobs.

The backend is given, not imported: building needs the frontend and the solver, which sit
above this package (`imagebuild.remote_node` is the production one; `polybuild dial-stdio`
passes it in).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from polybuild.errors import RemoteError
from polybuild.image.digest import Digest
from polybuild.progress.events import Event
from polybuild.remote import context_mirrors
from polybuild.remote.channel import Channel
from polybuild.remote.contextcache import ContextCache, check_manifest, parse_digest
from polybuild.remote.frames import CHUNK_SIZE
from polybuild.remote.messages import (
    BlobRequest,
    Bye,
    Cancel,
    Chunk,
    ContextWanted,
    Error,
    Message,
    Solve,
    SolveDone,
)
from polybuild.remote.node_images import ImageExchange
from polybuild.remote.progress_wire import to_message

WORK_DIR = Path("remote") / "work"


class Blob(Protocol):
    """A blob being read (the content store's verified reader)."""

    def read(self, n: int = -1) -> bytes: ...

    def close(self) -> None: ...


class NodeBackend(Protocol):
    """What builds on this node: its data root, a solve, and its content store's blobs."""

    @property
    def data_root(self) -> Path: ...

    async def build(
        self,
        solve: Solve,
        context_dir: Path,
        work_dir: Path,
        emit: Callable[[Event], None],
        images: ImageExchange,
    ) -> SolveDone:
        """Build `solve` from the context in `context_dir` (`work_dir`: private scratch
        space); `emit` takes progress events from any thread; `images` asks the client for
        a base image the node lacks."""

    def open_blob(self, digest: Digest) -> Blob:
        """A blob of the node's content store (BlobNotFoundError when it has none)."""

    def in_use(self) -> contextlib.AbstractContextManager[None]:
        """Held for a whole solve, context sync included, so that `polybuild prune` on the
        node never removes what a solve is using (it refuses while this is held)."""


class ClientGone(Exception):
    """The client hung up, said bye, or cancelled: stop this request's work."""

    def __init__(self, reply: Message | None = None) -> None:
        super().__init__("client gone")
        self.reply = reply


async def _receive_chunk(channel: Channel, request_id: int, stream: int) -> Chunk:
    message = await channel.receive()
    if message is None or isinstance(message, Bye):
        raise ClientGone()
    if isinstance(message, Cancel) and message.id == request_id:
        raise ClientGone(Error("canceled", id=request_id))
    if not isinstance(message, Chunk) or message.stream != stream:
        raise RemoteError(f"expected context stream {stream}, got {type(message).__name__}")
    return message


async def receive_context(channel: Channel, solve: Solve, cache: ContextCache) -> tuple[str, ...]:
    """Ask for the files the cache lacks and store each as it arrives (verified)."""
    check_manifest(solve.context)
    wanted = await asyncio.to_thread(cache.missing, solve.context)
    await channel.send(ContextWanted(solve.id, wanted))
    sizes = {e.digest: e.size for e in solve.context}
    for index, digest in enumerate(wanted):
        writer = cache.writer(digest, sizes[digest])
        try:
            while True:
                chunk = await _receive_chunk(channel, solve.id, index + 1)
                writer.write(chunk.data)
                if chunk.last:
                    break
            await asyncio.to_thread(writer.commit)
        finally:
            writer.abort()  # a no-op after commit
    return wanted


async def _watch(channel: Channel, request_id: int, images: ImageExchange) -> Message | None:
    """Read the client while a build runs (its answers about base images go to `images`);
    returns when it hangs up, says bye or cancels."""
    while True:
        message = await channel.receive()
        if message is None or isinstance(message, Bye):
            return None
        if isinstance(message, Cancel) and message.id == request_id:
            return Error("canceled", id=request_id)
        if images.deliver(message):
            continue
        raise RemoteError(f"unexpected message during a solve: {type(message).__name__}")


async def _run_build(
    channel: Channel, solve: Solve, backend: NodeBackend, context_dir: Path, work_dir: Path
) -> SolveDone:
    """The backend's build with its events sent as they come, while the client is watched."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def emit(event: Event) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    async def forward() -> None:
        while (event := await queue.get()) is not None:
            await channel.send(to_message(solve.id, event))

    images = ImageExchange(channel, solve.id)
    sender = asyncio.create_task(forward())
    build = asyncio.create_task(backend.build(solve, context_dir, work_dir, emit, images))
    watcher = asyncio.create_task(_watch(channel, solve.id, images))
    try:
        await asyncio.wait({build, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not build.done():
            raise ClientGone(watcher.result())
        queue.put_nowait(None)
        await sender  # the build's last events go before its result or its error
        return build.result()
    finally:
        images.close()
        for task in (build, watcher, sender):
            task.cancel()
        await asyncio.gather(build, watcher, sender, return_exceptions=True)


async def _to_thread_to_the_end(call: Callable[[], Path]) -> Path:
    """`call` in a thread; cancelled, it still waits for the thread (a lease must not end
    while its tree is being written)."""
    future = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({future})
        raise


async def handle_solve(channel: Channel, solve: Solve, backend: NodeBackend) -> bool:
    """Answer one Solve; False when the client is gone (the session ends)."""
    with backend.in_use():
        return await _handle_solve(channel, solve, backend)


async def _handle_solve(channel: Channel, solve: Solve, backend: NodeBackend) -> bool:
    root = backend.data_root
    (root / WORK_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
    work_dir = Path(tempfile.mkdtemp(prefix="solve-", dir=root / WORK_DIR))
    cache = ContextCache(root)
    try:
        await receive_context(channel, solve, cache)
        # The context's own directory, kept from the last build of it and held until this
        # build has ended (a fresh one under work_dir when every slot is busy).
        with context_mirrors.lease(root, solve.context_key) as mirror:
            if mirror is None:
                sync = functools.partial(context_mirrors.fresh_tree, cache, solve.context, work_dir)
            else:
                sync = functools.partial(context_mirrors.sync_mirror, cache, solve.context, mirror)
            context_dir = await _to_thread_to_the_end(sync)
            reply: Message = await _run_build(channel, solve, backend, context_dir, work_dir)
    except ClientGone as gone:
        if gone.reply is None:
            return False
        reply = gone.reply
    finally:
        await asyncio.to_thread(shutil.rmtree, work_dir, True)
    await channel.send(reply)
    return True


async def serve_blobs(channel: Channel, request: BlobRequest, backend: NodeBackend) -> None:
    """Send each requested blob as Chunk stream i+1; all are opened before the first byte
    goes, so a missing one is an Error for the request and nothing else."""
    digests = [parse_digest(text) for text in request.digests]
    files = [await asyncio.to_thread(backend.open_blob, d) for d in digests]
    try:
        for index, blob in enumerate(files):
            data = await asyncio.to_thread(blob.read, CHUNK_SIZE)
            while True:
                following = await asyncio.to_thread(blob.read, CHUNK_SIZE) if data else b""
                await channel.send(Chunk(index + 1, data, last=not following))
                if not following:
                    break
                data = following
    finally:
        for blob in files:
            with contextlib.suppress(OSError):
                blob.close()
