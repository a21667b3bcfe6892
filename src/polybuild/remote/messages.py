"""The messages of polybuild's remote protocol (docs/protocol.md) and their msgpack encoding.

Each message is a frozen msgspec Struct tagged by its `type` field. Hello, HelloOk,
VersionMismatch, Error and Bye are the same in every protocol version (fields may only be
added, with defaults), so two versions can always tell each other that they differ; every
other message may change when PROTOCOL_VERSION does.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from polybuild.errors import RemoteError

PROTOCOL_VERSION = 1


class Hello(msgspec.Struct, frozen=True, tag="hello", tag_field="type"):
    """Client -> node, first: who is asking and which protocol it speaks."""

    protocol: int
    polybuild: str
    capabilities: tuple[str, ...] = ()


class HelloOk(msgspec.Struct, frozen=True, tag="hello-ok", tag_field="type"):
    """Node -> client: the node speaks the client's protocol; what it runs and can do."""

    protocol: int
    polybuild: str
    capabilities: tuple[str, ...] = ()


class VersionMismatch(msgspec.Struct, frozen=True, tag="version-mismatch", tag_field="type"):
    """Node -> client, instead of HelloOk: the node speaks another protocol and hangs up."""

    protocol: int
    polybuild: str


class Info(msgspec.Struct, frozen=True, tag="info", tag_field="type"):
    """Client -> node: describe yourself (answered by NodeInfo with the same id)."""

    id: int


class NodeInfo(msgspec.Struct, frozen=True, tag="node-info", tag_field="type"):
    """Node -> client: the node's version and the platforms its own probe found."""

    id: int
    polybuild: str
    protocol: int
    native: tuple[str, ...]  # formatted platforms, as `format_platform` writes them
    emulated: tuple[str, ...]  # runnable through binfmt_misc, in the probe's order
    data_root: str
    data_root_ok: bool
    data_root_problem: str = ""  # why not, when data_root_ok is false
    root: bool = False  # the node's polybuild runs as root (needed to build)

    @property
    def platforms(self) -> tuple[str, ...]:
        """Every platform the node runs: native first, then emulated."""
        return (*self.native, *self.emulated)


class Error(msgspec.Struct, frozen=True, tag="error", tag_field="type"):
    """Either side: request `id` failed (id 0: the connection as a whole; the sender hangs up)."""

    message: str
    hint: str = ""
    id: int = 0


class Cancel(msgspec.Struct, frozen=True, tag="cancel", tag_field="type"):
    """Client -> node: stop the work of request `id`; the node answers it with an Error."""

    id: int


class Chunk(msgspec.Struct, frozen=True, tag="chunk", tag_field="type"):
    """Either side: the next piece of a byte stream `stream` (a blob, a context file);
    `last` ends it. Pieces of one stream arrive in order; streams may interleave."""

    stream: int
    data: bytes
    last: bool = False


class Bye(msgspec.Struct, frozen=True, tag="bye", tag_field="type"):
    """Client -> node: the session is over; the node exits (end of input means the same)."""


Message: TypeAlias = (
    Hello | HelloOk | VersionMismatch | Info | NodeInfo | Error | Cancel | Chunk | Bye
)

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    """The msgpack bytes of one message (a frame's payload)."""
    return _encoder.encode(message)


def decode(payload: bytes) -> Message:
    """One message from a frame's payload; anything else is a RemoteError."""
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:  # ValidationError (an unknown type, a bad field) too
        raise RemoteError(f"undecodable message: {exc}") from exc
