"""Builders: named sets of nodes (this machine, or others over ssh), and platform -> node."""

from __future__ import annotations

from polybuild.builders.endpoint import LOCAL, is_local, normalize_endpoint
from polybuild.builders.model import (
    DEFAULT_BUILDER,
    Builder,
    BuilderStore,
    Node,
    default_builder,
    validate_name,
    with_node,
)
from polybuild.builders.resolve import Assignment, Detected, resolve_nodes
from polybuild.builders.status import NodeStatus, platforms_in_groups
from polybuild.errors import BuilderNotFoundError, NoNodeForPlatformError

__all__ = [
    "DEFAULT_BUILDER",
    "LOCAL",
    "Assignment",
    "Builder",
    "BuilderNotFoundError",
    "BuilderStore",
    "Detected",
    "NoNodeForPlatformError",
    "Node",
    "NodeStatus",
    "default_builder",
    "is_local",
    "normalize_endpoint",
    "platforms_in_groups",
    "resolve_nodes",
    "validate_name",
    "with_node",
]
