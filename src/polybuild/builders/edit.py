"""What `polybuild create` does to a builder, as buildx does it: create, append, change, leave.

Pure functions of the saved builder (or None) and the command's flags; the CLI reads and
writes the store around them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, replace

from polybuild.builders.endpoint import LOCAL, normalize_endpoint
from polybuild.builders.model import DEFAULT_BUILDER, Builder, Node, validate_name
from polybuild.builders.node_options import node_options
from polybuild.errors import BuilderNotFoundError, UsageError
from polybuild.platforms import Platform, format_platform

DRIVERS = ("local",)  # polybuild's own: nothing to start, the node's polybuild runs per build
DRIVER_ALIASES = {"docker-container": "local", "docker": "local"}  # buildx scripts name these


@dataclass(frozen=True, slots=True)
class NodeChange:
    """The flags of one `polybuild create`: which node, and what to set on it."""

    name: str = ""  # --node ("" = the next free <builder>N)
    endpoint: str | None = None  # the ENDPOINT argument (None: not given, keep or this machine)
    platforms: tuple[Platform, ...] = ()  # --platform (empty: keep)
    driver_opts: tuple[tuple[str, str], ...] | None = None  # --driver-opt (None: keep)


def parse_driver_opts(values: Sequence[str]) -> tuple[tuple[str, str], ...] | None:
    """`--driver-opt` values: comma-separated K=V pairs (CSV quoting, as buildx); None if none."""
    if not values:
        return None
    opts: dict[str, str] = {}
    for value in values:
        for item in next(csv.reader([value]), []):
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--driver-opt: invalid value {item!r}, expecting K=V")
            opts[key.strip()] = val
    return tuple(sorted(opts.items()))


def driver_name(text: str) -> str:
    name = DRIVER_ALIASES.get(text, text)
    if name not in DRIVERS:
        raise UsageError(
            f"--driver: unsupported driver {text!r}",
            hint="polybuild has one driver, local; give an ssh:// endpoint for another machine",
        )
    return name


def next_node_name(builder: Builder) -> str:
    """The first of `<builder>0`, `<builder>1`, ... that no node has."""
    i = 0
    while builder.node(f"{builder.name}{i}") is not None:
        i += 1
    return f"{builder.name}{i}"


def create(
    existing: Builder | None,
    name: str,
    change: NodeChange,
    *,
    driver: str | None = None,
    append: bool = False,
) -> Builder:
    """The builder after `create [--name NAME] [--node N] [--append] [ENDPOINT]`.

    A new builder gets one node; `--append` adds a node to an existing builder; `--node N`
    without `--append` changes node N of an existing builder (endpoint, pinned platforms or
    driver options, whichever are given). Errors as buildx: appending to a builder that does
    not exist, changing an existing builder without --append or --node, a different driver.
    """
    if name == DEFAULT_BUILDER:
        raise UsageError("default is a reserved name and cannot be used for a builder")
    if existing is None:
        if append:
            raise BuilderNotFoundError(
                f"no builder {name!r} to append a node to",
                hint=f"create it first: polybuild create --name {name}",
            )
        builder = Builder(name, driver_name(driver or "local"), ())
        return update_node(builder, change, append=True)
    if not change.name and not append:
        raise UsageError(
            f"builder {name!r} already exists",
            hint="add a node with --append, change one with --node NAME, or polybuild rm it first",
        )
    if driver is not None and driver_name(driver) != existing.driver:
        raise UsageError(f"builder {name!r} exists with another driver ({existing.driver})")
    return update_node(existing, change, append=append)


def update_node(builder: Builder, change: NodeChange, *, append: bool) -> Builder:
    """Change the node `change.name`, or add it (append); platforms it pins are unpinned from
    the builder's other nodes, and two nodes may not share an endpoint (buildx's rules)."""
    endpoint = None if change.endpoint is None else normalize_endpoint(change.endpoint)
    node = (builder.node(change.name) or builder.node(change.name.lower())) if change.name else None
    if node is not None:
        node = replace(
            node,
            endpoint=node.endpoint if endpoint is None else endpoint,
            platforms=change.platforms or node.platforms,
            driver_opts=node.driver_opts if change.driver_opts is None else change.driver_opts,
        )
    elif change.name and not append and builder.nodes:
        raise UsageError(
            f"builder {builder.name!r} has no node {change.name!r}",
            hint="add it with --append",
        )
    else:
        node = Node(
            validate_name(change.name, "node") if change.name else next_node_name(builder),
            endpoint or LOCAL,
            change.platforms,
            change.driver_opts or (),
        )
    if node.is_local and node.driver_opts:
        raise UsageError(
            "--driver-opt: this machine's node takes no driver options",
            hint="driver options are for ssh:// nodes",
        )
    node_options(node.driver_opts)  # known keys with good values, or a UsageError now
    if any(n.endpoint == node.endpoint and n.name != node.name for n in builder.nodes):
        raise UsageError(
            f"builder {builder.name!r} already has a node at {node.endpoint}",
            hint="one node per machine; change it with --node NAME",
        )
    pinned = {format_platform(p) for p in node.platforms}
    nodes = [
        replace(n, platforms=tuple(p for p in n.platforms if format_platform(p) not in pinned))
        for n in builder.nodes
        if n.name != node.name
    ]
    if builder.node(node.name) is None:
        return replace(builder, nodes=(*nodes, node))
    return replace(
        builder,
        nodes=tuple(node if n.name == node.name else nodes.pop(0) for n in builder.nodes),
    )


def leave(builder: Builder, node_name: str) -> Builder:
    """`create --leave --name B --node N`: the builder without node N (never its last one)."""
    if builder.node(node_name) is None:
        raise UsageError(f"builder {builder.name!r} has no node {node_name!r}")
    if len(builder.nodes) == 1:
        raise UsageError(
            f"{node_name!r} is the last node of {builder.name!r}",
            hint=f"remove the builder instead: polybuild rm {builder.name}",
        )
    return replace(builder, nodes=tuple(n for n in builder.nodes if n.name != node_name))


__all__ = [
    "DRIVERS",
    "NodeChange",
    "create",
    "driver_name",
    "leave",
    "next_node_name",
    "parse_driver_opts",
    "update_node",
]
