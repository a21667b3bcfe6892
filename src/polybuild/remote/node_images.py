"""The node asks its client which image each FROM is: the client's own image (its manifest
and config, then only the layers the node does not have, each verified into the node's
store), or the reference pinned to the digest the client resolved it to for every node.

Questions and chunks arrive while the solve's watcher reads the channel, so the exchange
routes them: an ImageOffer to the question it answers, a Chunk to the stream it belongs to.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from polybuild.errors import RemoteError
from polybuild.image.content import ContentStore
from polybuild.image.digest import Digest
from polybuild.image.manifest import Manifest, Stored, parse_manifest
from polybuild.remote.channel import Channel
from polybuild.remote.messages import BlobWanted, Chunk, ImageOffer, ImageWanted, Message


@dataclass(frozen=True, slots=True)
class Answer:
    """The client's answer about a FROM image: its own image (now in the node's store), else
    the reference pinned to a digest (`name:tag@sha256:...`), else neither (the client could
    not resolve it)."""

    image: tuple[Stored[Manifest], bytes] | None = None
    pinned: str = ""


class ImageExchange:
    """One solve's questions about base images, answered by the client."""

    def __init__(self, channel: Channel, solve_id: int) -> None:
        self.channel = channel
        self.solve_id = solve_id
        self._requests = itertools.count(1)
        self._streams = itertools.count(1)
        self._offers: dict[int, asyncio.Future[ImageOffer]] = {}
        self._chunks: dict[int, asyncio.Queue[Chunk]] = {}
        self._fetching: set[asyncio.Task[object]] = set()

    def close(self) -> None:
        """Stop every question still waiting (the solve ended: the client is gone, or the
        build failed), so no frontend thread waits for an answer that never comes."""
        for task in self._fetching:
            task.cancel()

    def deliver(self, message: Message) -> bool:
        """Route a message from the client; False when it is not for this exchange."""
        if isinstance(message, ImageOffer) and message.id == self.solve_id:
            waiting = self._offers.pop(message.request, None)
            if waiting is None:
                raise RemoteError(f"an image offer nobody asked for ({message.request})")
            if not waiting.done():
                waiting.set_result(message)
            return True
        if isinstance(message, Chunk):
            queue = self._chunks.get(message.stream)
            if queue is None:
                raise RemoteError(f"a chunk of stream {message.stream}, which nobody expects")
            queue.put_nowait(message)
            return True
        return False

    async def fetch(self, ref: str, platform: str, content: ContentStore) -> Answer:
        """Ask the client about `ref` for `platform`: its manifest and config when it offers
        its own image (the blobs then in `content`, verified), else its pinned reference."""
        task = asyncio.current_task()
        assert task is not None
        self._fetching.add(task)
        try:
            return await self._fetch(ref, platform, content)
        finally:
            self._fetching.discard(task)

    async def _fetch(self, ref: str, platform: str, content: ContentStore) -> Answer:
        request = next(self._requests)
        offered: asyncio.Future[ImageOffer] = asyncio.get_running_loop().create_future()
        self._offers[request] = offered
        await self.channel.send(ImageWanted(self.solve_id, request, ref, platform))
        offer = await offered
        if not offer.found:
            return Answer(pinned=offer.pinned)
        manifest = parse_manifest(offer.manifest, offer.manifest_media_type or None)
        await asyncio.to_thread(content.put, offer.config, manifest.value.config.digest)
        await asyncio.to_thread(content.put, offer.manifest, manifest.digest)
        sizes: dict[Digest, int] = {}
        for layer in manifest.value.layers:
            if not content.exists(layer.digest):
                sizes.setdefault(layer.digest, layer.size)
        wanted = tuple(sizes)
        first = next(self._streams)
        for _ in wanted[1:]:
            next(self._streams)
        streams = [first + index for index in range(len(wanted))]
        for stream in streams:
            self._chunks[stream] = asyncio.Queue()
        try:
            await self.channel.send(
                BlobWanted(self.solve_id, request, first, tuple(str(d) for d in wanted))
            )
            for stream, digest in zip(streams, wanted, strict=True):
                await self._receive_blob(self._chunks[stream], content, digest, sizes[digest])
        finally:
            for stream in streams:
                self._chunks.pop(stream, None)
        return Answer((manifest, offer.config))

    async def _receive_blob(
        self, chunks: asyncio.Queue[Chunk], content: ContentStore, digest: Digest, size: int
    ) -> None:
        writer = content.writer(digest, size)
        try:
            while True:
                chunk = await chunks.get()
                await asyncio.to_thread(writer.write, chunk.data)
                if chunk.last:
                    break
            await asyncio.to_thread(writer.commit)  # checks size and digest
        finally:
            writer.abort()  # a no-op once committed
