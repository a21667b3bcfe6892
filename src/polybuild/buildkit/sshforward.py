"""SSH agent forwarding a build's session offers a BuildKit daemon (`moby.sshforward.v1.SSH`):
a `RUN --mount=type=ssh` step on the daemon reaches the agent socket the user gave `--ssh`.

The daemon asks `CheckAgent{ID}` before the step and opens one `ForwardAgent` call per
connection the step makes to its socket, naming the agent in the call's metadata
(`buildkit.ssh.id`, `default` when absent); the call's `BytesMessage`s are a byte pipe to
that agent. Only the ids this build offered are served (NOT_FOUND otherwise), and the
socket paths never leave this process.

As buildx does (BuildKit's `sshprovider` serves a read-only agent), the build may list keys
and ask for signatures but not add, remove or lock keys: the relay reads the agent protocol's
length-prefixed messages and answers any other request `SSH_AGENT_FAILURE` itself, without
the agent ever seeing it. The protocol is strictly request then answer, so one message at a
time is in flight and at most one message (capped as OpenSSH caps them) is held each way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polybuild.buildkit._grpc import grpc
from polybuild.buildkit._proto import ssh_pb2
from polybuild.buildkit.session import Service
from polybuild.errors import RemoteError

CHECK_AGENT = "/moby.sshforward.v1.SSH/CheckAgent"
FORWARD_AGENT = "/moby.sshforward.v1.SSH/ForwardAgent"
SSH_ID = "buildkit.ssh.id"  # the call's metadata naming the agent
DEFAULT_ID = "default"

MAX_MESSAGE = 256 << 10  # OpenSSH's agent refuses longer messages, and its clients too
REQUEST_IDENTITIES = 11  # SSH2_AGENTC_REQUEST_IDENTITIES
SIGN_REQUEST = 13  # SSH2_AGENTC_SIGN_REQUEST
ALLOWED = frozenset({REQUEST_IDENTITIES, SIGN_REQUEST})
FAILURE = (1).to_bytes(4, "big") + bytes([5])  # SSH_AGENT_FAILURE


def split_message(buffer: bytearray) -> bytes | None:
    """The first whole agent message (length prefix included) taken off `buffer`, or None
    while it is incomplete; RemoteError for a length no agent message has."""
    if len(buffer) < 4:
        return None
    length = int.from_bytes(buffer[:4], "big")
    if length == 0 or length > MAX_MESSAGE:
        raise RemoteError(f"an SSH agent message of {length} bytes")
    if len(buffer) < 4 + length:
        return None
    message = bytes(buffer[: 4 + length])
    del buffer[: 4 + length]
    return message


def allowed(message: bytes) -> bool:
    """Whether a read-only agent passes this request on (list keys, sign)."""
    return message[4] in ALLOWED


async def _next_request(context: Any, buffer: bytearray) -> bytes | None:
    """The daemon's next whole request, or None when its side has ended."""
    while (message := split_message(buffer)) is None:
        received = await context.read()
        if received is grpc.aio.EOF:
            return None
        buffer += received.data
    return message


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(4)
    length = int.from_bytes(header, "big")
    if length == 0 or length > MAX_MESSAGE:
        raise RemoteError(f"an SSH agent answer of {length} bytes")
    return header + await reader.readexactly(length)


async def _relay(context: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Requests from the daemon to the agent and answers back, until the daemon's side ends."""
    buffer = bytearray()
    while (request := await _next_request(context, buffer)) is not None:
        if allowed(request):
            writer.write(request)
            await writer.drain()
            answer = await _read_answer(reader)
        else:
            answer = FAILURE
        await context.write(ssh_pb2.BytesMessage(data=answer))


def ssh_service(agents: Mapping[str, Path]) -> Service:
    """SSH.CheckAgent and SSH.ForwardAgent for the build's `--ssh` agents: id -> socket."""

    async def check_agent(request: Any, context: Any) -> Any:
        ident = request.ID or DEFAULT_ID
        if ident not in agents:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unset ssh forward key {ident}")
        return ssh_pb2.CheckAgentResponse()

    async def forward_agent(request_iterator: Any, context: Any) -> None:
        metadata = dict(context.invocation_metadata() or ())
        ident = str(metadata.get(SSH_ID) or DEFAULT_ID)
        socket = agents.get(ident)
        if socket is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unset ssh forward key {ident}")
            return
        try:
            reader, writer = await asyncio.open_unix_connection(str(socket))
        except OSError as exc:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"SSH agent {ident}: cannot connect: {exc.strerror}"
            )
            return
        try:
            await _relay(context, reader, writer)
        except RemoteError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except (asyncio.IncompleteReadError, ConnectionError):
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"SSH agent {ident} closed the connection"
            )
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    handler = grpc.method_handlers_generic_handler(
        "moby.sshforward.v1.SSH",
        {
            "CheckAgent": grpc.unary_unary_rpc_method_handler(
                check_agent,
                request_deserializer=ssh_pb2.CheckAgentRequest.FromString,
                response_serializer=ssh_pb2.CheckAgentResponse.SerializeToString,
            ),
            "ForwardAgent": grpc.stream_stream_rpc_method_handler(
                forward_agent,
                request_deserializer=ssh_pb2.BytesMessage.FromString,
                response_serializer=ssh_pb2.BytesMessage.SerializeToString,
            ),
        },
    )
    return Service(handler, (CHECK_AGENT, FORWARD_AGENT))


__all__ = [
    "CHECK_AGENT",
    "DEFAULT_ID",
    "FORWARD_AGENT",
    "SSH_ID",
    "ssh_service",
]
