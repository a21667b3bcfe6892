"""Length-prefixed frames over a byte stream: 4 bytes of big-endian length, then the payload.

The peer may be hostile (a compromised node, or whatever answers on the far side of ssh), so
a frame longer than the reader's limit is refused before a byte of it is buffered, and a
stream that ends inside a frame is an error, not a short message. Large payloads (blobs,
context files) never need a large frame: they travel as a sequence of chunks
(`messages.Chunk`), each well under the limit.
"""

from __future__ import annotations

import asyncio
import struct

from polybuild.errors import RemoteError

HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 1024 * 1024  # a message plus one chunk of data, with room to spare
CHUNK_SIZE = 1024 * 1024  # how much of a blob one Chunk message carries


def encode_frame(payload: bytes, *, limit: int = MAX_FRAME) -> bytes:
    """The frame carrying `payload`; refused when the peer's reader would refuse it."""
    if len(payload) > limit:
        raise RemoteError(
            f"refusing to send a frame of {len(payload)} bytes: the limit is {limit} bytes"
        )
    return HEADER.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, *, limit: int = MAX_FRAME) -> bytes | None:
    """The next frame's payload, or None when the stream ends cleanly between frames."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise RemoteError(
            f"the stream ended inside a frame header ({len(exc.partial)} of {HEADER.size} bytes)"
        ) from exc
    (length,) = HEADER.unpack(header)
    if length > limit:
        raise RemoteError(f"refusing a frame of {length} bytes: the limit is {limit} bytes")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise RemoteError(
            f"the stream ended inside a frame ({len(exc.partial)} of {length} bytes)"
        ) from exc


async def write_frame(
    writer: asyncio.StreamWriter, payload: bytes, *, limit: int = MAX_FRAME
) -> None:
    """Send one frame and wait until the transport has room for more (flow control)."""
    writer.write(encode_frame(payload, limit=limit))
    await writer.drain()


def chunks(data: bytes | memoryview, size: int = CHUNK_SIZE) -> list[memoryview]:
    """`data` cut into pieces of at most `size` bytes (one empty piece for empty data)."""
    view = memoryview(data)
    return [view[start : start + size] for start in range(0, max(len(view), 1), size)]
