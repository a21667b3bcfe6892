"""The services a build's session offers the daemon: the local directories it may read
(FileSync), the files its exporters send back (FileSend), and the build's secrets.

Everything the daemon asks for is checked against what this build offered: a directory name,
an exporter id or a secret id the build did not give is refused (NOT_FOUND), never looked
up anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from polybuild.buildkit._grpc import grpc
from polybuild.buildkit._proto import filesync_pb2, secrets_pb2
from polybuild.buildkit.fsutil_send import filters_from_metadata, send_directory
from polybuild.buildkit.session import Service

FILESYNC_DIFFCOPY = "/moby.filesync.v1.FileSync/DiffCopy"
FILESEND_DIFFCOPY = "/moby.filesync.v1.FileSend/DiffCopy"
GET_SECRET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"
AUTH_CREDENTIALS = "/moby.filesync.v1.Auth/Credentials"
EXPORTER_ID = "buildkit-attachable-exporter-id"


class _Packets:
    """A DiffCopy call's context as the PacketStream fsutil_send speaks over."""

    def __init__(self, context: Any) -> None:
        self._context = context

    async def send(self, packet: Any) -> None:
        await self._context.write(packet)

    async def receive(self) -> Any:
        message = await self._context.read()
        return None if message is grpc.aio.EOF else message


def filesync_service(directories: Mapping[str, Path]) -> Service:
    """FileSync.DiffCopy for the named local directories (`context`, `dockerfile`, ...)."""
    from polybuild.buildkit._proto import fsutil_wire_pb2

    async def diffcopy(request_iterator: Any, context: Any) -> None:
        name, include, exclude, follow = filters_from_metadata(
            tuple(context.invocation_metadata() or ())
        )
        root = directories.get(name)
        if root is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no local directory {name!r}")
            return
        await send_directory(
            _Packets(context), root, include=include, exclude=exclude, followpaths=follow
        )

    handler = grpc.method_handlers_generic_handler(
        "moby.filesync.v1.FileSync",
        {
            "DiffCopy": grpc.stream_stream_rpc_method_handler(
                diffcopy,
                request_deserializer=fsutil_wire_pb2.Packet.FromString,
                response_serializer=fsutil_wire_pb2.Packet.SerializeToString,
            )
        },
    )
    return Service(handler, (FILESYNC_DIFFCOPY,))


# Where an exporter's file goes: a path created new (0600), or a stream the caller opened
# (a temp file beside the user's destination, stdout) that is written and left open.
Sink = Path | BinaryIO


def filesend_service(sinks: Mapping[str, Sink]) -> Service:
    """FileSend.DiffCopy for exporters that send one file (oci, docker, tar): exporter id
    -> the sink its bytes are written to, each at most once. A stream is written from a
    worker thread (stdout may be a slow pipe; the session must keep answering)."""
    sent: set[str] = set()

    async def diffcopy(request_iterator: Any, context: Any) -> None:
        metadata = dict(context.invocation_metadata() or ())
        ident = str(metadata.get(EXPORTER_ID, ""))
        target = sinks.get(ident)
        if target is None or ident in sent:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such exporter output")
            return
        sent.add(ident)
        if isinstance(target, Path):
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:

                async def write_file(data: bytes) -> None:
                    out.write(data)

                await _copy(context, write_file)
            return
        stream = target

        async def write(data: bytes) -> None:
            await asyncio.to_thread(stream.write, data)

        await _copy(context, write)
        await asyncio.to_thread(stream.flush)

    handler = grpc.method_handlers_generic_handler(
        "moby.filesync.v1.FileSend",
        {
            "DiffCopy": grpc.stream_stream_rpc_method_handler(
                diffcopy,
                request_deserializer=None,  # raw: local outputs send fsutil packets here
                response_serializer=filesync_pb2.BytesMessage.SerializeToString,
            )
        },
    )
    return Service(handler, (FILESEND_DIFFCOPY,))


async def _copy(context: Any, write: Callable[[bytes], Awaitable[None]]) -> None:
    while True:
        raw = await context.read()
        if raw is grpc.aio.EOF:
            return
        await write(filesync_pb2.BytesMessage.FromString(raw).data)


def secrets_service(values: Mapping[str, bytes]) -> Service:
    """Secrets.GetSecret: the build's --secret values by id, and nothing else."""

    async def get_secret(request: Any, context: Any) -> Any:
        value = values.get(request.ID)
        if value is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"secret {request.ID} not found")
        return secrets_pb2.GetSecretResponse(data=value)

    handler = grpc.method_handlers_generic_handler(
        "moby.buildkit.secrets.v1.Secrets",
        {
            "GetSecret": grpc.unary_unary_rpc_method_handler(
                get_secret,
                request_deserializer=secrets_pb2.GetSecretRequest.FromString,
                response_serializer=secrets_pb2.GetSecretResponse.SerializeToString,
            )
        },
    )
    return Service(handler, (GET_SECRET,))


Lookup = Callable[[str], Awaitable[tuple[str, str] | None]]


def auth_service(lookup: Lookup) -> Service:
    """Auth.Credentials: the user's credentials for exactly the registry host the daemon
    asks about (from `lookup`: Docker's config.json and its helpers), or none (anonymous).
    FetchToken and the token authority are not offered, so the daemon asks for credentials;
    a host it never asks about is never looked up."""
    from polybuild.buildkit._proto import auth_pb2

    async def credentials(request: Any, context: Any) -> Any:
        found = await lookup(request.Host)
        if found is None:
            return auth_pb2.CredentialsResponse()
        username, secret = found
        return auth_pb2.CredentialsResponse(Username=username, Secret=secret)

    handler = grpc.method_handlers_generic_handler(
        "moby.filesync.v1.Auth",
        {
            "Credentials": grpc.unary_unary_rpc_method_handler(
                credentials,
                request_deserializer=auth_pb2.CredentialsRequest.FromString,
                response_serializer=auth_pb2.CredentialsResponse.SerializeToString,
            )
        },
    )
    return Service(handler, (AUTH_CREDENTIALS,))


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


__all__ = [
    "AUTH_CREDENTIALS",
    "FILESEND_DIFFCOPY",
    "FILESYNC_DIFFCOPY",
    "GET_SECRET",
    "Sink",
    "auth_service",
    "filesend_service",
    "filesync_service",
    "secrets_service",
]
