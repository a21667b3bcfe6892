"""What `--driver-opt K=V` means: for an ssh node (NodeOptions) and for a BuildKit daemon
(BuildKitOptions, buildx's remote driver keys), checked when the node is created (an unknown
key or a bad value is a UsageError naming it)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from polybuild.errors import UsageError

DEFAULT_CONNECT_TIMEOUT = 20.0
# A command name or an absolute path, as the node's shell will be handed it (quoted).
_COMMAND = re.compile(r"^(/[A-Za-z0-9._+/-]+|[A-Za-z0-9._+-]+)$")

KNOWN = {
    "connect-timeout": "seconds to wait for ssh and the node's answer (default 20)",
    "polybuild": "the polybuild command on the node: a name on its PATH or an absolute path "
    "(default polybuild)",
}


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """An ssh node's options: how long to wait for it and what to run there."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    polybuild: str = "polybuild"


def node_options(pairs: Iterable[tuple[str, str]]) -> NodeOptions:
    """The NodeOptions of a node's `--driver-opt` pairs."""
    options = NodeOptions()
    for key, value in pairs:
        if key == "connect-timeout":
            try:
                seconds = float(value)
            except ValueError:
                seconds = math.nan
            if not 0 < seconds <= 3600:
                raise UsageError(
                    f"--driver-opt connect-timeout={value}: expected seconds, from 1 to 3600"
                )
            options = NodeOptions(seconds, options.polybuild)
        elif key == "polybuild":
            if not _COMMAND.match(value) or ".." in value.split("/"):
                raise UsageError(
                    f"--driver-opt polybuild={value}: expected a command name or an absolute path"
                )
            options = NodeOptions(options.connect_timeout, value)
        else:
            known = "; ".join(f"{k}: {v}" for k, v in KNOWN.items())
            raise UsageError(
                f"--driver-opt: unknown option {key!r}", hint=f"ssh nodes take {known}"
            )
    return options


BUILDKIT_KNOWN = {
    "cacert": "the CA certificate that signed the daemon's (PEM file; TLS)",
    "cert": "this client's certificate (PEM file; with key: mutual TLS)",
    "key": "this client's private key (PEM file; with cert)",
    "servername": "the name the daemon's certificate is for (default: the endpoint's host)",
    "connect-timeout": "seconds to wait for the daemon's answer (default 20)",
}


@dataclass(frozen=True, slots=True)
class BuildKitOptions:
    """How to reach a BuildKit daemon: TLS files (absolute paths; "" for none)."""

    cacert: str = ""
    cert: str = ""
    key: str = ""
    servername: str = ""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @property
    def tls(self) -> bool:
        return bool(self.cacert or self.cert)


def buildkit_options(pairs: Iterable[tuple[str, str]]) -> BuildKitOptions:
    """The BuildKitOptions of a BuildKit node's `--driver-opt` pairs."""
    values = dict(pairs)
    unknown = sorted(set(values) - set(BUILDKIT_KNOWN))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in BUILDKIT_KNOWN.items())
        raise UsageError(
            f"--driver-opt: unknown option {unknown[0]!r} for a BuildKit daemon",
            hint=f"the remote driver takes {known}",
        )
    for key in ("cacert", "cert", "key"):
        path = values.get(key, "")
        if path and (not path.startswith("/") or ".." in path.split("/")):
            raise UsageError(f"--driver-opt {key}={path}: expected an absolute file path")
    if bool(values.get("cert")) != bool(values.get("key")):
        raise UsageError("--driver-opt: cert and key go together (mutual TLS needs both)")
    timeout = (
        node_options([("connect-timeout", values["connect-timeout"])]).connect_timeout
        if ("connect-timeout" in values)
        else DEFAULT_CONNECT_TIMEOUT
    )
    return BuildKitOptions(
        values.get("cacert", ""),
        values.get("cert", ""),
        values.get("key", ""),
        values.get("servername", ""),
        timeout,
    )


__all__ = [
    "BUILDKIT_KNOWN",
    "DEFAULT_CONNECT_TIMEOUT",
    "KNOWN",
    "BuildKitOptions",
    "NodeOptions",
    "buildkit_options",
    "node_options",
]
