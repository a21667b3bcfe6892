"""polybuild's remote protocol (docs/protocol.md): frames, messages, the node side
(`polybuild dial-stdio`) and the client side over ssh or a local child process."""

from __future__ import annotations

from polybuild.remote.client import bootstrap, version_mismatch
from polybuild.remote.messages import PROTOCOL_VERSION, NodeInfo
from polybuild.remote.ssh import SSHEndpoint, parse_endpoint

__all__ = [
    "PROTOCOL_VERSION",
    "NodeInfo",
    "SSHEndpoint",
    "bootstrap",
    "parse_endpoint",
    "version_mismatch",
]
