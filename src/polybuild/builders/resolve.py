"""Which node builds which platform: buildx's two passes, strict then lenient."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from polybuild.builders.model import Node
from polybuild.errors import NoNodeForPlatformError
from polybuild.platforms import Platform, only, only_strict


@dataclass(frozen=True, slots=True)
class Detected:
    """What a node's own probe found it runs: natively, and through binfmt_misc emulators."""

    native: tuple[Platform, ...] = ()
    emulated: tuple[Platform, ...] = ()

    @property
    def platforms(self) -> tuple[Platform, ...]:
        """Every platform it runs: native first, then emulated."""
        return (*self.native, *(p for p in self.emulated if p not in self.native))


@dataclass(frozen=True, slots=True)
class Assignment:
    """A node and the platforms it builds."""

    node: Node
    platforms: tuple[Platform, ...]


def resolve_nodes(
    platforms: Sequence[Platform],
    nodes: Sequence[Node],
    detected: Callable[[Node], Detected],
) -> list[Assignment]:
    """Send each platform to a node, as buildx does: the first node that has it among its
    --platform ones (strictly), else the first that runs it natively (its --platform ones
    or its probe's native ones, leniently: arm64 runs arm/v7), else the first that runs it
    under emulation, else the first node (a build with no RUN step needs no emulator).

    `detected(node)` is asked only when no node has the platform among its --platform ones.
    """
    if not nodes:
        raise NoNodeForPlatformError(
            "the builder has no nodes", hint="add one with polybuild create --append"
        )

    def first(runs: Callable[[Node], Sequence[Platform]], platform: Platform) -> Node | None:
        return next((n for n in nodes if any(only(p).match(platform) for p in runs(n))), None)

    chosen: dict[str, list[Platform]] = {}
    for platform in platforms:
        node = next(
            (n for n in nodes if any(only_strict(platform).match(p) for p in n.platforms)), None
        )
        node = (
            node
            or first(lambda n: (*n.platforms, *detected(n).native), platform)
            or first(lambda n: detected(n).emulated, platform)
            or nodes[0]
        )
        chosen.setdefault(node.name, []).append(platform)
    return [Assignment(n, tuple(chosen[n.name])) for n in nodes if n.name in chosen]
