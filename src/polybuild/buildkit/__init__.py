"""BuildKit nodes: polybuild's client of an existing BuildKit daemon's gRPC control API.

Importing this package is cheap: only `client` and `control` import grpc (through `_grpc`,
which silences its core's stderr logging) and the generated protobuf modules, so the CLI pays
for them only when it talks to a BuildKit daemon. The
wire format and where each `.proto` came from are in docs/buildkit.md.

    records.py  what a daemon says of itself, as frozen values (version, workers)
    address.py  a daemon's address as a gRPC target, and the TLS files to reach it with
    control.py  the Control service's methods as typed gRPC calls (paths from the protos)
    client.py   BuildkitClient: connect (unix or tcp, optional TLS), info(), list_workers(),
                gRPC failures mapped to polybuild's errors
    proto/      our .proto files (BuildKit's names and field numbers, tag v0.32.2)
    _proto/     the modules scripts/genproto generates from them (committed)
"""

from __future__ import annotations

from polybuild.buildkit.address import TLSConfig, grpc_target
from polybuild.buildkit.records import DaemonInfo, WorkerInfo

__all__ = ["DaemonInfo", "TLSConfig", "WorkerInfo", "grpc_target"]
