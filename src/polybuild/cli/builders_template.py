"""`.Builder` of an `ls --format` row as buildx's template sees it: its lsBuilder (the
builder's Name, Driver, Dynamic, LastActivity, Current) and `.Builder.Nodes`, each node's
Name, Endpoint, DriverOpts, Flags, Version, Err and detected Platforms (v1.Platform)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from polybuild.builders import Builder, Node, NodeStatus
from polybuild.errors import PlatformError
from polybuild.imagetools.gotemplate import Field, GoMap, Nil, Struct, Time
from polybuild.imagetools.template_input import platform
from polybuild.platforms import Platform, parse

_ZERO_TIME = Time("0001-01-01T00:00:00Z")  # polybuild keeps no builder's last activity


def _platform(value: Platform) -> Struct:
    wire = {"os": value.os, "architecture": value.architecture, "variant": value.variant}
    return platform(wire)


def _platforms(values: Sequence[Platform]) -> Any:
    return [_platform(p) for p in values] if values else Nil("[]v1.Platform")


def _detected(texts: Sequence[str]) -> Any:
    found = []
    for text in texts:
        try:
            found.append(parse(text))
        except PlatformError:
            continue
    return _platforms(found)


def _node(builder: Builder, node: Node, status: NodeStatus) -> Struct:
    """A builder.Node: store.Node's fields promoted, then what loading the node found."""
    opts = GoMap(dict(node.driver_opts), "map[string]string", "")
    stored = Struct(
        "store.Node",
        (
            Field("Name", node.name),
            Field("Endpoint", node.endpoint),
            Field("Platforms", _platforms(node.platforms)),
            Field("DriverOpts", opts if node.driver_opts else Nil("map[string]string")),
            Field("BuildkitdFlags", Nil("[]string"), "Flags"),
            Field("Files", Nil("map[string][]uint8")),
        ),
    )
    return Struct(
        "builder.Node",
        (
            Field("Node", stored, embedded=True),
            Field("Builder", builder.name),
            Field("Version", status.version),
            Field("Err", status.error or None),
            Field("Platforms", _detected(status.platforms)),
        ),
    )


def builder_value(builder: Builder, statuses: Sequence[NodeStatus], current: bool) -> Struct:
    """The *lsBuilder a row's `.Builder` is (`.Builder.Nodes` is the Nodes method: the
    loaded nodes)."""
    group = Struct(
        "store.NodeGroup",
        (
            Field("Name", builder.name),
            Field("Driver", builder.driver),
            Field("Dynamic", False),
            Field("LastActivity", _ZERO_TIME),
        ),
        pointer=True,
    )
    nodes = [_node(builder, n, s) for n, s in zip(builder.nodes, statuses, strict=True)]
    loaded = Struct(
        "builder.Builder",
        (Field("NodeGroup", group, embedded=True),),
        methods={"Nodes": lambda: nodes},
        pointer=True,
    )
    return Struct(
        "commands.lsBuilder",
        (Field("Builder", loaded, embedded=True), Field("Current", current)),
        pointer=True,
    )


__all__ = ["builder_value"]
