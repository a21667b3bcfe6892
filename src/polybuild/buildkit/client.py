"""BuildkitClient: a connection to a BuildKit daemon's control API (unix or tcp, optional TLS)
over grpc.aio, its Info and ListWorkers as polybuild values, and gRPC failures mapped to
polybuild's errors (NodeUnreachableError naming the endpoint, RemoteError for the daemon's).

Only this module, `control` and `_grpc` of the package import grpc (through `_grpc`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from types import TracebackType
from typing import Self, TypeVar

from polybuild.buildkit._grpc import grpc
from polybuild.buildkit._proto import control_pb2 as pb
from polybuild.buildkit._proto import ops_pb2
from polybuild.buildkit.address import TLSConfig, grpc_target, read_tls
from polybuild.buildkit.control import ControlCalls
from polybuild.buildkit.records import CacheRecord, DaemonInfo, WorkerInfo
from polybuild.errors import NodeUnreachableError, RemoteError
from polybuild.platforms import Platform, normalize

_T = TypeVar("_T")

# BuildKit's own client and daemon allow 16 MiB messages (containerd's defaults); gRPC's
# Python default of 4 MiB would refuse a large Status update.
MAX_MESSAGE = 16 << 20
DEFAULT_TIMEOUT = 10.0
# What gRPC's core puts in a failed call's details when TLS failed: our check of the daemon's
# certificate or name (handshake, CERTIFICATE_VERIFY_FAILED, Hostname Verification), or the
# daemon's refusal of ours, which TLS 1.3 reports only after the handshake (TSI_DATA_CORRUPTED).
_TLS_WORDS = ("ssl", "tls", "handshake", "certificate", "verification", "tsi_")


class BuildkitClient:
    """A BuildKit daemon at `address` (`tcp://host:port` or `unix:///path`), as builders
    stores it. Use it as an async context manager; the channel connects on the first call.

    `calls` exposes every Control method (Solve, Status, Session, ...) for the build's own
    modules; `info()` and `list_workers()` return polybuild values.
    """

    def __init__(
        self, address: str, *, tls: TLSConfig | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._tls = tls
        self._target = grpc_target(address)
        self._channel: grpc.aio.Channel | None = None
        self._calls: ControlCalls | None = None

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> None:
        """Make the channel (on the running event loop); connecting waits for the first call."""
        if self._channel is not None:
            return
        options: list[tuple[str, str | int]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            # A failed call's trailers carry BuildKit's error details, the Dockerfile among
            # them; past gRPC's 8 KiB default the error itself was lost ("Stream removed").
            ("grpc.max_metadata_size", MAX_MESSAGE),
            ("grpc.absolute_max_metadata_size", MAX_MESSAGE),
        ]
        if self._tls is None:
            self._channel = grpc.aio.insecure_channel(self._target, options=options)
        else:
            material = read_tls(self._tls)
            credentials = grpc.ssl_channel_credentials(
                root_certificates=material.root_certificates,
                private_key=material.private_key,
                certificate_chain=material.certificate_chain,
            )
            if self._tls.server_name:
                options.append(("grpc.ssl_target_name_override", self._tls.server_name))
            self._channel = grpc.aio.secure_channel(self._target, credentials, options=options)
        self._calls = ControlCalls(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel, self._calls = self._channel, None, None
            await channel.close()

    @property
    def calls(self) -> ControlCalls:
        if self._calls is None:
            self.open()
        assert self._calls is not None
        return self._calls

    async def info(self) -> DaemonInfo:
        """The daemon's version (Control.Info)."""
        response = await self.call("Info", self.calls.info(pb.InfoRequest(), timeout=self.timeout))
        version = response.buildkitVersion
        return DaemonInfo(
            package=version.package, version=version.version, revision=version.revision
        )

    async def list_workers(self) -> tuple[WorkerInfo, ...]:
        """The daemon's workers with their platforms and labels (Control.ListWorkers)."""
        response = await self.call(
            "ListWorkers",
            self.calls.list_workers(pb.ListWorkersRequest(), timeout=self.timeout),
        )
        return tuple(
            WorkerInfo(
                id=record.ID,
                platforms=tuple(_platform(p) for p in record.platforms),
                labels=tuple(sorted(record.Labels.items())),
            )
            for record in response.record
        )

    async def disk_usage(self, filters: tuple[str, ...] = ()) -> tuple[CacheRecord, ...]:
        """The daemon's build cache records (Control.DiskUsage), those `filters` (BuildKit's
        syntax: `type==regular,description~=go`) select when given."""
        request = pb.DiskUsageRequest(filter=list(filters))
        response = await self.call(
            "DiskUsage", self.calls.disk_usage(request, timeout=self.timeout)
        )
        return tuple(_record(r) for r in response.record)

    async def prune(
        self,
        *,
        all_: bool = False,
        filters: tuple[str, ...] = (),
        keep_duration: float | None = None,
        reserved_space: int | None = None,
        max_used_space: int | None = None,
        min_free_space: int | None = None,
    ) -> tuple[CacheRecord, ...]:
        """Remove the daemon's unused build cache (Control.Prune; `all_`: not only what it
        would collect itself; the rest as buildx's prune flags); the records removed."""
        removed: list[CacheRecord] = []
        request = pb.PruneRequest(
            all=all_,
            filter=list(filters),
            keepDuration=int((keep_duration or 0) * 1e9),
            reservedSpace=reserved_space or 0,
            maxUsedSpace=max_used_space or 0,
            minFreeSpace=min_free_space or 0,
        )
        try:
            async for record in self.calls.prune(request):
                removed.append(_record(record))
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(
                self.address, "Prune", exc, timeout=self.timeout, tls=self._tls is not None
            ) from exc
        return tuple(removed)

    async def call(self, method: str, pending: Awaitable[_T]) -> _T:
        """Await one call, mapping a gRPC failure to polybuild's errors (see `map_rpc_error`)."""
        try:
            return await pending
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(
                self.address, method, exc, timeout=self.timeout, tls=self._tls is not None
            ) from exc


def _record(record: pb.UsageRecord) -> CacheRecord:
    last = record.LastUsedAt
    return CacheRecord(
        id=record.ID,
        size=record.Size,
        in_use=record.InUse,
        mutable=record.Mutable,
        shared=record.Shared,
        description=record.Description,
        record_type=record.RecordType,
        last_used=last.seconds + last.nanos / 1e9 if record.HasField("LastUsedAt") else None,
        created_at=(
            record.CreatedAt.seconds + record.CreatedAt.nanos / 1e9
            if record.HasField("CreatedAt")
            else None
        ),
        parents=tuple(record.Parents),
        usage_count=record.UsageCount,
    )


def _platform(platform: ops_pb2.Platform) -> Platform:
    return normalize(Platform(platform.OS, platform.Architecture, platform.Variant))


def map_rpc_error(
    address: str, method: str, exc: grpc.aio.AioRpcError, *, timeout: float, tls: bool
) -> NodeUnreachableError | RemoteError:
    """A failed call as polybuild's error naming the daemon's endpoint.

    No connection is NodeUnreachableError saying whether TLS (`tls`: the client used it)
    was refused or the daemon could not be reached; no answer in time likewise; any other
    status is the daemon's own failure, a RemoteError with its code and text.
    """
    code = exc.code()
    details = (exc.details() or "").strip()
    # A refused handshake is UNAVAILABLE or, for a certificate check, UNKNOWN; both say
    # "failed to connect" before any request reached the daemon.
    connecting = code == grpc.StatusCode.UNAVAILABLE or details.startswith("failed to connect")
    if connecting:
        if tls and any(word in details.lower() for word in _TLS_WORDS):
            return NodeUnreachableError(
                address,
                f"TLS refused: the handshake with the BuildKit daemon failed ({details})",
                hint="check the cacert, cert, key and servername driver options",
            )
        return NodeUnreachableError(
            address,
            f"the BuildKit daemon is unreachable: {details or 'no connection'}",
            hint=(
                "the daemon closed the connection: does it want TLS (--driver-opt cacert=...)?"
                if not tls and "socket closed" in details.lower()
                else "is buildkitd running and listening there?"
            ),
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return NodeUnreachableError(
            address, f"the BuildKit daemon is unreachable: no answer within {timeout:g} s"
        )
    return RemoteError(f"BuildKit daemon {address}: {method} failed: {code.name}: {details}")


__all__ = ["DEFAULT_TIMEOUT", "MAX_MESSAGE", "BuildkitClient", "map_rpc_error"]
