"""What is known of a node right now (status, version, detected platforms), as values.

`ls` shows a remote node without connecting to it (status `inactive`: nothing of polybuild
runs there between builds); `inspect --bootstrap` and `create --bootstrap` ask the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from polybuild.errors import PlatformError
from polybuild.platforms import Platform, format_platform, parse

RUNNING = "running"
INACTIVE = "inactive"
ERROR = "error"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A node's status as buildx names them, and what its probe reported when it answered."""

    status: str = INACTIVE
    version: str = ""
    platforms: tuple[str, ...] = ()  # detected: native first, then emulated
    error: str = ""  # why it could not be reached (status ERROR)


def unreachable(reason: str) -> NodeStatus:
    return NodeStatus(ERROR, error=reason)


def platforms_in_groups(pinned: Sequence[Platform], detected: Sequence[str]) -> list[str]:
    """Pinned platforms marked `*`, then the detected ones not pinned (buildx's FormatInGroups).

    Detected platforms come from the node's own probe, as text; they are normalised when
    they parse, so `linux/aarch64` from a node matches a pinned `linux/arm64`.
    """
    out = [format_platform(p) + "*" for p in pinned]
    seen = {format_platform(p) for p in pinned}
    for text in detected:
        try:
            name = format_platform(parse(text))
        except PlatformError:
            name = text
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


__all__ = ["ERROR", "INACTIVE", "RUNNING", "NodeStatus", "platforms_in_groups", "unreachable"]
