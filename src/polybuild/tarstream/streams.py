"""Streams read forwards: the `Readable` protocol and `Prefixed`, which replays sniffed bytes."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["Prefixed", "Readable"]


class Readable(Protocol):
    """A stream of bytes read forwards; only `read` is needed."""

    def read(self, size: int, /) -> bytes | None: ...


class Prefixed(io.RawIOBase):
    """Replays bytes already read for sniffing, then reads on from the underlying stream."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view)) or b""
        view[: len(data)] = data
        return len(data)
