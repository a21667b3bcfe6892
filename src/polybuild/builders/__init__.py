"""Builders: named sets of nodes (this machine, or remote workers), and platform -> node."""

from __future__ import annotations

from polybuild.builders.model import (
    DEFAULT_BUILDER,
    Builder,
    BuilderStore,
    Node,
    default_builder,
    with_node,
)
from polybuild.builders.resolve import Assignment, resolve_nodes
from polybuild.errors import BuilderNotFoundError, NoNodeForPlatformError

__all__ = [
    "DEFAULT_BUILDER",
    "Assignment",
    "Builder",
    "BuilderNotFoundError",
    "BuilderStore",
    "NoNodeForPlatformError",
    "Node",
    "default_builder",
    "resolve_nodes",
    "with_node",
]
