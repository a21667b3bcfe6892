"""The client's side of a BuildKit session (docs/buildkit.md, "The session").

The daemon calls the client's services (FileSync, FileSend, Secrets, Auth, health) over the
one `Control.Session` stream the client opens, as an HTTP/2 gRPC client. grpcio cannot
serve an existing connection, so the services run on a `grpc.aio` server that listens on a
unix socket in a private (0700) directory of our own, and a relay copies bytes both ways
between a connection to that socket and the session stream. Only the daemon's end of this
one stream ever reaches the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from polybuild.buildkit._grpc import grpc
from polybuild.buildkit._proto import control_pb2 as pb
from polybuild.buildkit._proto import health_pb2
from polybuild.buildkit.client import BuildkitClient
from polybuild.scratch import socket_tmp

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_CHUNK = 32 << 10  # what the daemon's side reads at a time


class Service:
    """One service of the session: its gRPC handler and the method paths it serves."""

    def __init__(self, handler: grpc.GenericRpcHandler, methods: Sequence[str]) -> None:
        self.handler = handler
        self.methods = tuple(methods)


async def _health_check(request: health_pb2.HealthCheckRequest, context: Any) -> Any:
    return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def health_service() -> Service:
    """`grpc.health.v1.Health/Check`: the daemon asks every few seconds; two misses end it."""
    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                _health_check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        },
    )
    return Service(handler, (HEALTH_CHECK,))


class Session:
    """A session with the daemon of `client`, serving `services` (health is always there).

    `shared_key` lets the daemon reuse what it kept of a local directory sent before (the
    same key for the same client context makes the next transfer incremental).
    Use as `async with Session(...) as session:` and pass `session.id` in the Solve.
    """

    def __init__(
        self, client: BuildkitClient, services: Sequence[Service], *, shared_key: str = ""
    ) -> None:
        self.client = client
        self.id = secrets.token_hex(16)
        self.shared_key = shared_key or self.id
        self.services = (health_service(), *services)
        self._directory: Path | None = None
        self._server: grpc.aio.Server | None = None
        self._call: Any = None
        self._relay: list[asyncio.Task[None]] = []
        self._writer: asyncio.StreamWriter | None = None

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for service in self.services for m in service.methods)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="polybuild-session-", dir=socket_tmp()))
        os.chmod(self._directory, 0o700)
        socket = self._directory / "session.sock"
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", 16 << 20),
                ("grpc.max_send_message_length", 16 << 20),
            ]
        )
        server.add_generic_rpc_handlers([service.handler for service in self.services])
        server.add_insecure_port(f"unix:{socket}")
        self._server = server
        await server.start()
        reader, self._writer = await asyncio.open_unix_connection(str(socket))
        metadata = [
            ("x-docker-expose-session-uuid", self.id),
            ("x-docker-expose-session-sharedkey", self.shared_key),
            *(("x-docker-expose-session-grpc-method", method) for method in self.methods),
        ]
        self._call = self.client.calls.session(metadata=metadata)
        self._relay = [
            asyncio.create_task(self._to_daemon(reader)),
            asyncio.create_task(self._from_daemon(self._writer)),
        ]

    async def _to_daemon(self, reader: asyncio.StreamReader) -> None:
        """What our server writes goes to the daemon, in BytesMessages."""
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            while data := await reader.read(_CHUNK):
                await self._call.write(pb.BytesMessage(data=data))
            await self._call.done_writing()

    async def _from_daemon(self, writer: asyncio.StreamWriter) -> None:
        """What the daemon sends goes to our server."""
        with contextlib.suppress(grpc.aio.AioRpcError, ConnectionError):
            while True:
                message = await self._call.read()
                if message is grpc.aio.EOF:
                    break
                writer.write(message.data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    async def close(self) -> None:
        """End the session: the stream, the relay, the server and its private directory."""
        if self._call is not None:
            self._call.cancel()
        for task in self._relay:
            task.cancel()
        await asyncio.gather(*self._relay, return_exceptions=True)
        self._relay = []
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
            self._writer = None
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


__all__ = ["HEALTH_CHECK", "Service", "Session", "health_service"]
