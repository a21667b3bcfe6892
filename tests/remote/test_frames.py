"""Frames: 4-byte big-endian length + payload; oversized and truncated frames are errors."""

from __future__ import annotations

import asyncio

import pytest

from polybuild.errors import RemoteError
from polybuild.remote.frames import HEADER, chunks, encode_frame, read_frame


def read_all(data: bytes, *, limit: int = 1024) -> list[bytes | None]:
    """Every frame `read_frame` finds in `data`, ending with None at a clean end."""

    async def main() -> list[bytes | None]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        frames: list[bytes | None] = []
        while True:
            frame = await read_frame(reader, limit=limit)
            frames.append(frame)
            if frame is None:
                return frames

    return asyncio.run(main())


def test_frames_round_trip_in_order() -> None:
    payloads = [b"", b"x", bytes(range(256)) * 4]
    stream = b"".join(encode_frame(p, limit=1024) for p in payloads)
    assert read_all(stream) == [*payloads, None]


def test_the_length_is_four_bytes_big_endian() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert HEADER.size == 4


def test_a_frame_over_the_limit_is_refused_before_it_is_read() -> None:
    # Only the header arrives: the reader must refuse on the length alone, not wait for
    # (or buffer) the 4 GiB the peer announces.
    with pytest.raises(RemoteError, match=r"refusing a frame of 4294967295 bytes.*limit is 1024"):
        read_all(HEADER.pack(0xFFFFFFFF))
    assert read_all(encode_frame(b"x" * 1024, limit=1024)) == [b"x" * 1024, None]


def test_a_frame_over_the_limit_is_not_sent() -> None:
    with pytest.raises(RemoteError, match="refusing to send a frame of 1025 bytes"):
        encode_frame(b"x" * 1025, limit=1024)


def test_a_stream_ending_inside_a_frame_is_an_error() -> None:
    frame = encode_frame(b"hello world")
    with pytest.raises(RemoteError, match=r"ended inside a frame \(5 of 11 bytes\)"):
        read_all(frame[:-6])
    with pytest.raises(RemoteError, match=r"ended inside a frame header \(2 of 4 bytes\)"):
        read_all(encode_frame(b"ok") + frame[:2])


def test_chunks_cut_large_payloads_below_the_frame_limit() -> None:
    data = bytes(range(256)) * 1000
    pieces = chunks(data, 4096)
    assert b"".join(pieces) == data
    assert [len(p) for p in pieces[:-1]] == [4096] * (len(pieces) - 1)
    assert 0 < len(pieces[-1]) <= 4096
    assert [bytes(p) for p in chunks(b"", 4096)] == [b""]
