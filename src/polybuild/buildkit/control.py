"""BuildKit's Control service as typed gRPC calls on a grpc.aio channel.

Each method's path comes from the generated descriptor (`/moby.buildkit.v1.Control/Solve`),
so it is always the one our control.proto declares. The generated `control_pb2_grpc` stubs
are untyped; these are the same calls with their request and response types.
"""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from polybuild.buildkit._grpc import grpc
from polybuild.buildkit._proto import control_pb2 as pb

CONTROL = pb.DESCRIPTOR.services_by_name["Control"]


def method_path(service: ServiceDescriptor, name: str) -> str:
    """The HTTP/2 path gRPC calls `name` of `service` by: `/<package>.<Service>/<Method>`."""
    return f"/{service.full_name}/{service.methods_by_name[name].name}"


class ControlCalls:
    """One typed multi-callable per Control method, bound to a channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.info = channel.unary_unary(
            method_path(CONTROL, "Info"),
            request_serializer=pb.InfoRequest.SerializeToString,
            response_deserializer=pb.InfoResponse.FromString,
        )
        self.list_workers = channel.unary_unary(
            method_path(CONTROL, "ListWorkers"),
            request_serializer=pb.ListWorkersRequest.SerializeToString,
            response_deserializer=pb.ListWorkersResponse.FromString,
        )
        self.solve = channel.unary_unary(
            method_path(CONTROL, "Solve"),
            request_serializer=pb.SolveRequest.SerializeToString,
            response_deserializer=pb.SolveResponse.FromString,
        )
        self.status = channel.unary_stream(
            method_path(CONTROL, "Status"),
            request_serializer=pb.StatusRequest.SerializeToString,
            response_deserializer=pb.StatusResponse.FromString,
        )
        self.session = channel.stream_stream(
            method_path(CONTROL, "Session"),
            request_serializer=pb.BytesMessage.SerializeToString,
            response_deserializer=pb.BytesMessage.FromString,
        )
        self.disk_usage = channel.unary_unary(
            method_path(CONTROL, "DiskUsage"),
            request_serializer=pb.DiskUsageRequest.SerializeToString,
            response_deserializer=pb.DiskUsageResponse.FromString,
        )
        self.prune = channel.unary_stream(
            method_path(CONTROL, "Prune"),
            request_serializer=pb.PruneRequest.SerializeToString,
            response_deserializer=pb.UsageRecord.FromString,
        )


__all__ = ["CONTROL", "ControlCalls", "method_path"]
