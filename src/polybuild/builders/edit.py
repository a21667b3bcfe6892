"""What `polybuild create` does to a builder, as buildx does it: create, append, change, leave.

Pure functions of the saved builder (or None) and the command's flags; the CLI reads and
writes the store around them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, replace

from polybuild.builders.endpoint import normalize_buildkit_endpoint, normalize_endpoint
from polybuild.builders.model import (
    DEFAULT_BUILDER,
    LOCAL_DRIVER,
    REMOTE_DRIVER,
    Builder,
    Node,
    validate_name,
)
from polybuild.builders.node_options import buildkit_options, node_options
from polybuild.errors import BuilderNotFoundError, UsageError
from polybuild.platforms import Platform, format_platform

# polybuild's own (nothing to start: the node's polybuild runs per build), and buildx's remote
# driver (a BuildKit daemon that runs already, at tcp:// or unix://).
DRIVERS = (LOCAL_DRIVER, REMOTE_DRIVER)
DRIVER_ALIASES = {"docker-container": "local", "docker": "local"}  # buildx scripts name these


@dataclass(frozen=True, slots=True)
class NodeChange:
    """The flags of one `polybuild create`: which node, and what to set on it."""

    name: str = ""  # --node ("" = the next free <builder>N)
    endpoint: str | None = None  # the ENDPOINT argument (None: not given, keep or this machine)
    platforms: tuple[Platform, ...] = ()  # --platform (empty: keep)
    driver_opts: tuple[tuple[str, str], ...] | None = None  # --driver-opt (None: keep)
    driver: str | None = None  # --driver (None: the builder's)


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
            hint="local (this machine, or ssh:// for another with polybuild) or remote (a "
            "BuildKit daemon at tcp:// or unix://)",
        )
    return name


def _endpoint(text: str, driver: str) -> str:
    """The endpoint as stored for a node of `driver` (a UsageError saying what it takes)."""
    if driver == REMOTE_DRIVER:
        if not text:
            raise UsageError(
                "the remote driver needs the BuildKit daemon's address",
                hint="polybuild create --driver remote tcp://HOST:PORT (or unix:///PATH)",
            )
        return normalize_buildkit_endpoint(text)
    return normalize_endpoint(text)


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
        builder = Builder(name, driver_name(driver or LOCAL_DRIVER), ())
        return update_node(builder, replace(change, driver=builder.driver), append=True)
    if not change.name and not append:
        raise UsageError(
            f"builder {name!r} already exists",
            hint="add a node with --append, change one with --node NAME, or polybuild rm it first",
        )
    # A builder may mix drivers: --append --driver remote adds a BuildKit daemon to it.
    node_driver = driver_name(driver) if driver is not None else None
    return update_node(existing, replace(change, driver=node_driver), append=append)


def update_node(builder: Builder, change: NodeChange, *, append: bool) -> Builder:
    """Change the node `change.name`, or add it (append); platforms it pins are unpinned from
    the builder's other nodes, and two nodes may not share an endpoint (buildx's rules)."""
    node = (builder.node(change.name) or builder.node(change.name.lower())) if change.name else None
    if node is not None and change.driver is not None and change.driver != node.driver:
        raise UsageError(
            f"node {node.name!r} has driver {node.driver}, not {change.driver}",
            hint="remove it with --leave and add it again with --append --driver",
        )
    driver = node.driver if node is not None else change.driver or builder.driver
    endpoint = None if change.endpoint is None else _endpoint(change.endpoint, driver)
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
            endpoint or _endpoint("", driver),
            change.platforms,
            change.driver_opts or (),
            driver,
        )
    if node.is_local and node.driver_opts:
        raise UsageError(
            "--driver-opt: this machine's node takes no driver options",
            hint="driver options are for ssh:// nodes and BuildKit daemons (--driver remote)",
        )
    # Known keys with good values, or a UsageError now.
    if node.is_buildkit:
        options = buildkit_options(node.driver_opts)
        if options.tls and node.endpoint.startswith("unix://"):
            raise UsageError("--driver-opt: TLS options are for tcp:// daemons, not unix sockets")
    else:
        node_options(node.driver_opts)
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
