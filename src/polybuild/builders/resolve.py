"""Which node builds which platform: buildx's two passes, strict then lenient."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from polybuild.builders.model import Node
from polybuild.errors import NoNodeForPlatformError
from polybuild.platforms import Platform, only, only_strict


@dataclass(frozen=True, slots=True)
class Assignment:
    """A node and the platforms it builds."""

    node: Node
    platforms: tuple[Platform, ...]


def resolve_nodes(
    platforms: Sequence[Platform],
    nodes: Sequence[Node],
    detected: Callable[[Node], Sequence[Platform]],
) -> list[Assignment]:
    """Send each platform to a node, preferring those configured for it with --platform.

    First pass: a node whose configured platforms strictly match. Second pass: a node whose
    configured or detected (runnable) platforms match leniently (arm64 runs arm/v7). Among
    equals, the earlier node wins, and a platform no node runs goes to the first node (a
    build with no RUN step needs no emulator), as in buildx.
    """
    if not nodes:
        raise NoNodeForPlatformError(
            "the builder has no nodes", hint="add one with polybuild create --append"
        )
    chosen: dict[str, list[Platform]] = {}
    for platform in platforms:
        node = next(
            (n for n in nodes if any(only_strict(platform).match(p) for p in n.platforms)), None
        )
        if node is None:
            # Lenient: a node runs the platform if one of its own runs it (arm64 runs arm/v7).
            node = next(
                (n for n in nodes
                 if any(only(p).match(platform) for p in (*n.platforms, *detected(n)))),
                nodes[0],
            )  # fmt: skip
        chosen.setdefault(node.name, []).append(platform)
    return [Assignment(n, tuple(chosen[n.name])) for n in nodes if n.name in chosen]
