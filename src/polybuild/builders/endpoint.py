"""A node's endpoint as `polybuild create` takes it: this machine, or `ssh://[user@]host[:port]`."""

from __future__ import annotations

from polybuild.errors import UsageError

LOCAL = "local"
# What buildx users type for "this machine": nothing, a Docker context name, the Docker socket.
_THIS_MACHINE = ("", LOCAL, "default", "unix:///var/run/docker.sock")
_SUPPORTED = "leave it out for this machine, or give ssh://[user@]host[:port] for another one"


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


__all__ = ["LOCAL", "is_local", "normalize_endpoint"]
