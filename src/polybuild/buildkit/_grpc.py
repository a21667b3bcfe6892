"""grpc, imported with its core's own stderr logging off: import it from here, first.

gRPC's C core prints failed handshakes and resets to stderr by itself (E1203 ... lines);
polybuild reports them as errors instead. GRPC_VERBOSITY is read when grpc is first
imported, so every module of this package takes grpc from this one.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc
import grpc.aio

__all__ = ["grpc"]
