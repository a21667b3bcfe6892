"""Messages: tagged msgpack structs; what a peer of another version can still read."""

from __future__ import annotations

import msgspec
import pytest

from polybuild.errors import RemoteError
from polybuild.remote.messages import (
    PROTOCOL_VERSION,
    Bye,
    Cancel,
    Chunk,
    Error,
    Hello,
    HelloOk,
    Info,
    Message,
    NodeInfo,
    VersionMismatch,
    decode,
    encode,
)

EVERY_KIND: list[Message] = [
    Hello(PROTOCOL_VERSION, "0.1.0", ("info",)),
    HelloOk(PROTOCOL_VERSION, "0.1.0", ("info",)),
    VersionMismatch(7, "9.0.0"),
    Info(id=3),
    NodeInfo(
        id=3,
        polybuild="0.1.0",
        protocol=PROTOCOL_VERSION,
        native=("linux/amd64",),
        emulated=("linux/arm64", "linux/arm/v7"),
        data_root="/var/lib/polybuild",
        data_root_ok=True,
        root=True,
    ),
    Error("boom", hint="do this", id=3),
    Cancel(id=3),
    Chunk(stream=2, data=b"\x00\xff" * 10, last=True),
    Bye(),
]


@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: Message) -> None:
    assert decode(encode(message)) == message


def test_the_type_tag_names_the_message() -> None:
    raw = msgspec.msgpack.decode(encode(Info(id=1)))
    assert raw == {"type": "info", "id": 1}


def test_a_hello_from_a_newer_client_with_more_fields_is_still_read() -> None:
    # The versioning rule: Hello only ever gains fields with defaults, so an old node can
    # still read a new client's hello and answer VersionMismatch.
    future = msgspec.msgpack.encode(
        {"type": "hello", "protocol": 9, "polybuild": "9.0.0", "capabilities": [], "x": [1, 2]}
    )
    assert decode(future) == Hello(9, "9.0.0", ())


def test_node_info_lists_native_platforms_first() -> None:
    info = EVERY_KIND[4]
    assert isinstance(info, NodeInfo)
    assert info.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (msgspec.msgpack.encode({"type": "launch-missiles"}), "undecodable message"),
        (msgspec.msgpack.encode({"type": "info", "id": "one"}), "Expected `int`"),
        (msgspec.msgpack.encode({"id": 1}), "undecodable message"),
        (b"\xc1garbage", "undecodable message"),
    ],
)
def test_anything_else_is_a_remote_error(payload: bytes, words: str) -> None:
    with pytest.raises(RemoteError, match=words):
        decode(payload)
