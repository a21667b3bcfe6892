"""A Channel sends and receives protocol messages, one per frame, over a pair of asyncio streams."""

from __future__ import annotations

import asyncio
import contextlib

from polybuild.remote.frames import MAX_FRAME, read_frame, write_frame
from polybuild.remote.messages import Message, decode, encode


class Channel:
    """Messages over a StreamReader/StreamWriter pair; `close` ends the writing side.

    Sending is serialised by a lock, so tasks that share a channel (a solve streaming
    progress while a blob goes the other way) never interleave the bytes of two frames.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, limit: int = MAX_FRAME
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.limit = limit
        self._send_lock = asyncio.Lock()

    async def send(self, message: Message) -> None:
        async with self._send_lock:
            await write_frame(self.writer, encode(message), limit=self.limit)

    async def receive(self) -> Message | None:
        """The next message, or None when the peer closed the stream between messages."""
        payload = await read_frame(self.reader, limit=self.limit)
        return None if payload is None else decode(payload)

    async def close(self) -> None:
        """Close our sending side; a peer that is already gone is not an error here."""
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.close()
            await self.writer.wait_closed()
