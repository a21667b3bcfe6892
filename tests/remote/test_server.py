"""The node side in-process, over a socket pair: handshake, info, version mismatch, and a
client that breaks the protocol."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from polybuild.remote.channel import Channel
from polybuild.remote.frames import HEADER, MAX_FRAME
from polybuild.remote.messages import (
    PROTOCOL_VERSION,
    Bye,
    Cancel,
    Error,
    Hello,
    HelloOk,
    Info,
    NodeInfo,
    VersionMismatch,
)
from polybuild.remote.server import serve

HELLO = Hello(PROTOCOL_VERSION, "0.1.0", ())


def fake_info(request_id: int) -> NodeInfo:
    return NodeInfo(request_id, "0.1.0", PROTOCOL_VERSION, ("linux/amd64",), (), "/x", True)


async def channel_pair() -> tuple[Channel, Channel]:
    a, b = socket.socketpair()
    client = Channel(*await asyncio.open_connection(sock=a))
    node = Channel(*await asyncio.open_connection(sock=b))
    return client, node


def with_node(
    script: Callable[[Channel], Awaitable[None]], *, protocol: int = PROTOCOL_VERSION
) -> None:
    """Run `script` as the client against `serve`; the server must finish by itself."""

    async def main() -> None:
        client, node = await channel_pair()
        server = asyncio.create_task(serve(node, protocol=protocol, describe=fake_info))
        await script(client)
        async with asyncio.timeout(5):  # the server ends on Bye, EOF or a protocol error
            await server
        await client.close()

    asyncio.run(main())


def test_hello_info_bye() -> None:
    async def script(client: Channel) -> None:
        await client.send(HELLO)
        ok = await client.receive()
        assert isinstance(ok, HelloOk)
        assert ok.protocol == PROTOCOL_VERSION
        assert "info" in ok.capabilities
        await client.send(Cancel(id=9))  # nothing to cancel: no answer, no harm
        await client.send(Info(id=5))
        assert await client.receive() == fake_info(5)
        await client.send(Bye())
        assert await client.receive() is None  # the node hung up

    with_node(script)


def test_the_end_of_input_ends_the_node() -> None:
    async def script(client: Channel) -> None:
        await client.send(HELLO)
        assert isinstance(await client.receive(), HelloOk)
        await client.close()

    with_node(script)


@pytest.mark.parametrize("node_protocol", [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1])
def test_a_node_of_another_protocol_says_so_and_hangs_up(node_protocol: int) -> None:
    async def script(client: Channel) -> None:
        await client.send(HELLO)
        assert await client.receive() == VersionMismatch(node_protocol, "0.1.0")
        assert await client.receive() is None

    with_node(script, protocol=node_protocol)


def test_the_first_message_must_be_hello() -> None:
    async def script(client: Channel) -> None:
        await client.send(Info(id=1))
        error = await client.receive()
        assert isinstance(error, Error)
        assert error.message == "expected hello, got Info"
        assert await client.receive() is None

    with_node(script)


def test_a_client_message_the_node_does_not_take_is_refused() -> None:
    async def script(client: Channel) -> None:
        await client.send(HELLO)
        assert isinstance(await client.receive(), HelloOk)
        await client.send(fake_info(1))
        error = await client.receive()
        assert isinstance(error, Error)
        assert "unexpected message from the client: NodeInfo" in error.message
        assert await client.receive() is None

    with_node(script)


def test_an_oversized_frame_from_the_client_is_refused() -> None:
    async def script(client: Channel) -> None:
        client.writer.write(HEADER.pack(MAX_FRAME + 1))
        await client.writer.drain()
        error = await client.receive()
        assert isinstance(error, Error)
        assert f"refusing a frame of {MAX_FRAME + 1} bytes" in error.message
        assert await client.receive() is None

    with_node(script)


def test_a_large_blob_crosses_in_chunks() -> None:
    """The design for blobs: many Chunk messages, each far below the frame limit."""
    from polybuild.remote.frames import chunks
    from polybuild.remote.messages import Chunk

    blob = bytes(range(251)) * (3 * MAX_FRAME // 251)  # three times what one frame may carry

    async def main() -> None:
        sender, receiver = await channel_pair()

        async def send() -> None:
            pieces = chunks(blob)
            for index, piece in enumerate(pieces):
                await sender.send(Chunk(1, bytes(piece), last=index == len(pieces) - 1))

        async def receive() -> bytes:
            parts = []
            while True:
                message = await receiver.receive()
                assert isinstance(message, Chunk)
                parts.append(message.data)
                if message.last:
                    return b"".join(parts)

        async with asyncio.TaskGroup() as group:
            group.create_task(send())
            received = group.create_task(receive())
        assert received.result() == blob
        await sender.close()
        await receiver.close()

    asyncio.run(main())


def test_a_failed_request_is_answered_with_an_error_and_the_session_goes_on() -> None:
    from polybuild.errors import EmulationError

    calls = []

    def flaky(request_id: int) -> NodeInfo:
        calls.append(request_id)
        if len(calls) == 1:
            raise EmulationError("cannot read binfmt_misc", hint="mount it")
        return fake_info(request_id)

    async def main() -> None:
        client, node = await channel_pair()
        server = asyncio.create_task(serve(node, describe=flaky))
        await client.send(HELLO)
        assert isinstance(await client.receive(), HelloOk)
        await client.send(Info(id=1))
        assert await client.receive() == Error(
            "cannot read binfmt_misc", hint="mount it", id=1, kind="EmulationError"
        )
        await client.send(Info(id=2))
        assert await client.receive() == fake_info(2)
        await client.send(Bye())
        async with asyncio.timeout(5):
            await server

    asyncio.run(main())
