"""A node's endpoint as `polybuild create` takes it: this machine, `ssh://[user@]host[:port]`
for a machine with polybuild, or (`--driver remote`) a BuildKit daemon's `tcp://host:port` or
`unix:///path`."""

from __future__ import annotations

import re

from polybuild.errors import UsageError

LOCAL = "local"
# What buildx users type for "this machine": nothing, a Docker context name, the Docker socket.
_THIS_MACHINE = ("", LOCAL, "default", "unix:///var/run/docker.sock")
_SUPPORTED = (
    "leave it out for this machine, give ssh://[user@]host[:port] for another one with "
    "polybuild, or --driver remote tcp://HOST:PORT for a BuildKit daemon"
)


def is_local(endpoint: str) -> bool:
    return endpoint in _THIS_MACHINE


def normalize_endpoint(text: str) -> str:
    """The endpoint as stored: `local`, or an `ssh://` URL as the ssh transport writes it.

    The ssh part is checked by the transport's own parser (remote.ssh), so a saved endpoint
    is one a build can reach. Other schemes (tcp://, docker-container://) and context names
    are usage errors saying what polybuild supports: its nodes are machines reached with the
    user's own ssh client.
    """
    text = text.strip()
    if is_local(text):
        return LOCAL
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise UsageError(f"unknown endpoint {text!r}", hint=_SUPPORTED)
    if scheme.lower() != "ssh":
        raise UsageError(
            f"unsupported endpoint {text!r}: polybuild reaches other machines over ssh only",
            hint=_SUPPORTED,
        )
    from polybuild.remote.ssh import parse_endpoint  # asyncio and msgspec: only when needed

    return str(parse_endpoint("ssh://" + rest))


_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
_BUILDKIT_HINT = "a BuildKit daemon is tcp://HOST:PORT or unix:///PATH (as buildx's remote driver)"


def normalize_buildkit_endpoint(text: str) -> str:
    """A BuildKit daemon's address as stored: `tcp://host:port` or `unix:///absolute/path`."""
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()

    def refuse(why: str) -> UsageError:
        return UsageError(f"invalid BuildKit endpoint {text!r}: {why}", hint=_BUILDKIT_HINT)

    if not sep or scheme not in ("tcp", "unix"):
        raise refuse("the remote driver speaks to tcp:// or unix:// addresses")
    if scheme == "unix":
        parts = rest.split("/")
        if not rest.startswith("/") or ".." in parts or any(c in rest for c in "?#\0"):
            raise refuse("a unix socket is an absolute path")
        return f"unix://{rest}"
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise refuse("a tcp address needs a port (tcp://HOST:PORT)")
    if not (_HOST.match(host) or _IPV6.match(host)):
        raise refuse(f"bad host {host!r}")
    return f"tcp://{host}:{int(port)}"


__all__ = ["LOCAL", "is_local", "normalize_buildkit_endpoint", "normalize_endpoint"]
