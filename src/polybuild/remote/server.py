"""The node side of the remote protocol: `polybuild dial-stdio` answers a client on stdin/stdout.

Standard output carries frames and nothing else: the protocol gets private copies of the
two descriptors, and fd 1 then points at stderr and fd 0 at /dev/null, so neither a stray
print nor a child process (the platform probe, a container) can corrupt the stream or eat
the client's input. The server exits when the client says Bye or its input ends (ssh gone),
so nothing is left running on the node after the client exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable

from polybuild._version import __version__
from polybuild.errors import PolybuildError, RemoteError, StepFailedError, UsageError
from polybuild.remote.channel import Channel
from polybuild.remote.messages import (
    PROTOCOL_VERSION,
    BlobRequest,
    Bye,
    Cancel,
    Error,
    Hello,
    HelloOk,
    Info,
    Message,
    NodeInfo,
    Solve,
    VersionMismatch,
)
from polybuild.remote.node_solve import NodeBackend, handle_solve, serve_blobs
from polybuild.remote.nodeinfo import node_info

CAPABILITIES: tuple[str, ...] = ("info", "solve")

Describe = Callable[[int], NodeInfo]  # request id -> this node's NodeInfo
Backend = Callable[[], NodeBackend]  # made on the first solve (it opens the data root)


async def serve(
    channel: Channel,
    *,
    protocol: int = PROTOCOL_VERSION,
    describe: Describe | None = None,
    backend: Backend | None = None,
) -> None:
    """Answer one client until Bye or the end of its input; `protocol` is what we speak
    (tests pretend to be another version with it); `backend` builds (none: solves fail)."""

    def default_describe(request_id: int) -> NodeInfo:
        return node_info(request_id, protocol=protocol)

    describe = describe or default_describe
    backends = _Backends(backend)
    try:
        if not await _handshake(channel, protocol):
            return
        while (message := await channel.receive()) is not None:
            if isinstance(message, Bye):
                return
            try:
                if isinstance(message, Solve | BlobRequest):
                    if not await _build_request(channel, message, backends):
                        return
                    continue
                reply = await _answer(message, describe)
            except RemoteError:
                raise
            except PolybuildError as exc:  # this request failed; the session goes on
                reply = error_reply(getattr(message, "id", 0), exc)
            except OSError as exc:  # the node's own I/O (the probe's scratch files, say)
                reply = Error(f"{type(exc).__name__}: {exc}", id=getattr(message, "id", 0))
            if reply is not None:
                await channel.send(reply)
    except RemoteError as exc:  # the client broke the protocol: say so once, then hang up
        await _send_quietly(channel, Error(str(exc)))
    except OSError:
        pass  # the client went away mid-answer: nothing is left to do for it
    finally:
        await channel.close()


def error_reply(request_id: int, exc: PolybuildError) -> Error:
    """The Error telling the client that request `request_id` failed with `exc` (a failed
    step's name, lines and Dockerfile excerpt with it)."""
    if isinstance(exc, StepFailedError):
        return Error(
            str(exc), exc.hint or "", request_id, type(exc).__name__,
            step=exc.step, lines=exc.lines, excerpt=exc.excerpt,
        )  # fmt: skip
    return Error(str(exc), exc.hint or "", request_id, type(exc).__name__)


async def _handshake(channel: Channel, protocol: int) -> bool:
    hello = await channel.receive()
    if hello is None:
        return False
    if not isinstance(hello, Hello):
        raise RemoteError(f"expected hello, got {type(hello).__name__}")
    if hello.protocol != protocol:
        await channel.send(VersionMismatch(protocol=protocol, polybuild=__version__))
        return False
    await channel.send(HelloOk(protocol=protocol, polybuild=__version__, capabilities=CAPABILITIES))
    return True


class _Backends:
    """The session's one backend, made when the first request needs it."""

    def __init__(self, make: Backend | None) -> None:
        self._make = make
        self._made: NodeBackend | None = None

    def get(self) -> NodeBackend:
        if self._made is None:
            if self._make is None:
                raise UsageError("this node cannot build (it was started without a backend)")
            self._made = self._make()
        return self._made


async def _build_request(
    channel: Channel, message: Solve | BlobRequest, backends: _Backends
) -> bool:
    """A solve or a blob request; False when the client went away meanwhile."""
    if isinstance(message, Solve):
        return await handle_solve(channel, message, backends.get())
    await serve_blobs(channel, message, backends.get())
    return True


async def _answer(message: Message, describe: Describe) -> Message | None:
    if isinstance(message, Info):
        return await asyncio.to_thread(describe, message.id)
    if isinstance(message, Cancel):
        return None  # nothing runs long enough to cancel yet; a finished request stays done
    raise RemoteError(f"unexpected message from the client: {type(message).__name__}")


async def _send_quietly(channel: Channel, message: Message) -> None:
    with contextlib.suppress(RemoteError, OSError):  # a client that is gone cannot be told
        await channel.send(message)


def take_stdio() -> tuple[int, int]:
    """Private copies of fds 0 and 1 for the protocol; fd 0 becomes /dev/null, fd 1 stderr."""
    stdin, stdout = os.dup(0), os.dup(1)
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return stdin, stdout


async def open_fds(stdin: int, stdout: int) -> Channel:
    """A Channel reading from fd `stdin` and writing to fd `stdout` (pipes or sockets)."""
    if os.isatty(stdin) or os.isatty(stdout):
        raise UsageError(
            "dial-stdio speaks polybuild's binary protocol, not to a terminal",
            hint="a polybuild client starts it over ssh: polybuild create ssh://HOST",
        )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(stdin, "rb", buffering=0)
        )
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(stdout, "wb", buffering=0)
        )
    except ValueError as exc:  # a terminal or a regular file
        raise UsageError(
            f"dial-stdio needs pipes or sockets on stdin and stdout ({exc})",
            hint="a polybuild client starts it over ssh: polybuild create ssh://HOST",
        ) from exc
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return Channel(reader, writer)


def serve_stdio(*, protocol: int = PROTOCOL_VERSION, backend: Backend | None = None) -> None:
    """Serve one client on this process's stdin and stdout (`polybuild dial-stdio`)."""
    stdin, stdout = take_stdio()

    async def main() -> None:
        await serve(await open_fds(stdin, stdout), protocol=protocol, backend=backend)

    asyncio.run(main())
