"""The client side of the remote protocol: connect to a node, agree on the protocol version,
and ask it what it is (`polybuild inspect --bootstrap`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from polybuild._version import __version__
from polybuild.errors import NodeUnreachableError, RemoteError
from polybuild.remote.messages import (
    PROTOCOL_VERSION,
    Bye,
    Error,
    Hello,
    HelloOk,
    Info,
    Message,
    NodeInfo,
    VersionMismatch,
)
from polybuild.remote.process import ProcessLink, printable
from polybuild.remote.ssh import open_ssh, parse_endpoint

CAPABILITIES: tuple[str, ...] = ("info", "solve")
STDOUT_HINT = (
    "something on the node writes to stdout before polybuild starts "
    "(a shell startup file such as ~/.bashrc?)"
)

_PLATFORM = re.compile(r"^[a-z0-9_.-]{1,32}/[a-z0-9_.-]{1,32}(/[a-z0-9_.-]{1,32})?$")
_VERSION = re.compile(r"^[0-9A-Za-z.+_-]{1,64}$")

Opener = Callable[[], Awaitable[ProcessLink]]


async def bootstrap(
    endpoint: str,
    *,
    timeout: float = 10.0,
    opener: Opener | None = None,
    polybuild: str = "polybuild",
) -> NodeInfo:
    """Connect to the node at `endpoint`, check it speaks our protocol and return its NodeInfo.

    Every failure, including no answer within `timeout` seconds, is a NodeUnreachableError
    naming the endpoint; an endpoint that is not `ssh://[user@]host[:port]` is a UsageError.
    `opener` replaces the ssh transport (tests use remote.local.open_local); `polybuild` is
    the command ssh runs on the node.
    """
    if opener is None:
        ssh_endpoint = parse_endpoint(endpoint)

        async def open_default() -> ProcessLink:
            return await open_ssh(ssh_endpoint, connect_timeout=timeout, polybuild=polybuild)

        opener = open_default
    try:
        async with asyncio.timeout(timeout):
            link = await opener()
            try:
                info = await _query(link, endpoint)
            except BaseException:  # timed out, cancelled or failed: end the child at once
                await link.close(grace=0)
                raise
            await link.close()
            return info
    except TimeoutError as exc:
        raise NodeUnreachableError(
            endpoint,
            f"no answer within {timeout:g} s",
            hint="check that the host is up and `ssh HOST polybuild --version` works",
        ) from exc


async def _query(link: ProcessLink, endpoint: str) -> NodeInfo:
    channel = link.channel
    try:
        await channel.send(Hello(PROTOCOL_VERSION, __version__, CAPABILITIES))
        first = await channel.receive()
    except RemoteError as exc:
        raise await link.failure(f"not the polybuild protocol: {exc}", hint=STDOUT_HINT) from exc
    except OSError as exc:
        raise await link.failure(f"the connection broke: {exc}") from exc
    if first is None:
        raise await link.failure("the connection closed before the node answered")
    check_hello(first, endpoint)
    try:
        await channel.send(Info(id=1))
        reply = await channel.receive()
        if isinstance(reply, NodeInfo) and reply.id == 1:
            await channel.send(Bye())
            return checked(reply, endpoint)
    except (RemoteError, OSError) as exc:
        raise await link.failure(str(exc)) from exc
    if reply is None:
        raise await link.failure("the connection closed before the node described itself")
    raise _unexpected(endpoint, reply)


def check_hello(reply: Message, endpoint: str) -> None:
    if isinstance(reply, HelloOk) and reply.protocol == PROTOCOL_VERSION:
        return
    if isinstance(reply, VersionMismatch):
        raise version_mismatch(endpoint, reply.polybuild, reply.protocol)
    raise _unexpected(endpoint, reply)


def version_mismatch(endpoint: str, node_version: str, node_protocol: int) -> NodeUnreachableError:
    """The error for a node that speaks another protocol, saying which side to upgrade."""
    node = f"it runs polybuild {node_version} (protocol {node_protocol})"
    if node_protocol < PROTOCOL_VERSION:
        return NodeUnreachableError(
            endpoint,
            f"{node}, this client speaks protocol {PROTOCOL_VERSION}: "
            f"upgrade polybuild on {endpoint}",
            hint=f"pip install --upgrade polybuild=={__version__} on the node",
        )
    return NodeUnreachableError(
        endpoint,
        f"{node}, this client (polybuild {__version__}) speaks protocol {PROTOCOL_VERSION}: "
        "upgrade polybuild here",
        hint=f"pip install --upgrade polybuild=={node_version}",
    )


def checked(info: NodeInfo, endpoint: str) -> NodeInfo:
    """`info` when every text in it is what it claims to be: the node may be hostile, and
    its platforms and version end up on the user's terminal and in build plans."""
    bad = [p for p in info.platforms if not _PLATFORM.match(p)]
    if not _VERSION.match(info.polybuild):
        bad.append(info.polybuild)
    if bad:
        raise NodeUnreachableError(
            endpoint, f"the node described itself with invalid text: {printable(repr(bad[0]))}"
        )
    return info


def _unexpected(endpoint: str, reply: Message) -> NodeUnreachableError:
    if isinstance(reply, Error):
        hint = printable(reply.hint) if reply.hint else None
        return NodeUnreachableError(endpoint, printable(reply.message), hint=hint)
    kind = type(reply).__name__
    return NodeUnreachableError(endpoint, f"unexpected answer from the node: {kind}")
