"""How `ls` and `inspect` print builders: buildx's table, its JSON lines, its inspect block."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from polybuild.builders import Builder, Node, NodeStatus, platforms_in_groups
from polybuild.builders.status import ERROR

_INDENT = " \\_ "  # buildx marks node rows so
_PADDING = 3  # between table columns, as docker's table formatter
_TABLE_GROUPS = 4  # platform groups (os/arch) a table row shows unless --no-trunc
# Groups shown first, in this order, as buildx; any others follow by name.
_MAJOR = ("linux/amd64", "linux/arm64", "linux/arm", "linux/ppc64le", "linux/s390x",
          "linux/riscv64", "linux/mips64")  # fmt: skip


def _align(rows: Sequence[Sequence[str]], padding: int) -> list[str]:
    """Columns padded to their widest cell (the last column as is), like Go's tabwriter."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width + padding) for cell, width in zip(row, widths, strict=False)]
        lines.append(("".join(cells) + row[-1]).rstrip())
    return lines


def _platforms(node: Node, status: NodeStatus) -> list[str]:
    return platforms_in_groups(node.platforms, status.platforms)


def truncated(platforms: Sequence[str], groups: int = _TABLE_GROUPS) -> str:
    """A table cell of platforms, as buildx shortens it: variants of one os/arch become one
    entry (`linux/amd64* (+4)`, starred if one of them is pinned), at most `groups` entries
    (the common architectures first), then how many platforms were left out."""
    by_group: dict[str, list[str]] = {}
    for platform in platforms:
        key = "/".join(platform.rstrip("*").split("/")[:2])
        by_group.setdefault(key, []).append(platform)
    order = [g for g in _MAJOR if g in by_group]
    order += sorted(g for g in by_group if g not in _MAJOR)
    shown = order[:groups]
    cells = []
    for group in shown:
        members = by_group[group]
        if len(members) == 1:
            cells.append(members[0])
        else:
            star = "*" if any(m.endswith("*") for m in members) else ""
            cells.append(f"{group}{star} (+{len(members)})")
    left = len(platforms) - sum(len(by_group[g]) for g in shown)
    if left:
        cells.append(f"({left} more)")
    return ", ".join(cells)


def ls_table(
    entries: Sequence[tuple[Builder, Sequence[NodeStatus]]], current: str, *, trunc: bool = True
) -> str:
    """`polybuild ls`: a row per builder (the current one marked *) and per node."""
    rows = [["NAME/NODE", "DRIVER/ENDPOINT", "STATUS", "POLYBUILD", "PLATFORMS"]]
    for builder, statuses in entries:
        rows.append([builder.name + ("*" if builder.name == current else ""), builder.driver,
                     "", "", ""])  # fmt: skip
        for node, status in zip(builder.nodes, statuses, strict=True):
            platforms = _platforms(node, status)
            rows.append(
                [
                    _INDENT + node.name,
                    _INDENT + node.endpoint,
                    status.status,
                    status.version,
                    truncated(platforms) if trunc else ", ".join(platforms),
                ]
            )
    return "\n".join(_align(rows, _PADDING)) + "\n"


def ls_errors(entries: Sequence[tuple[Builder, Sequence[NodeStatus]]]) -> list[str]:
    """The lines buildx prints on stderr under the table for nodes in error."""
    return [
        f"Failed to get status for {builder.name} ({node.name}): {status.error}"
        for builder, statuses in entries
        for node, status in zip(builder.nodes, statuses, strict=True)
        if status.status == ERROR
    ]


def builder_json(builder: Builder, statuses: Sequence[NodeStatus], current: bool) -> str:
    """One line of `ls --format json`: buildx's Builder object (keys sorted, as it prints)."""
    nodes: list[dict[str, Any]] = []
    for node, status in zip(builder.nodes, statuses, strict=True):
        entry: dict[str, Any] = {"Name": node.name, "Endpoint": node.endpoint}
        if node.driver != builder.driver:
            entry["Driver"] = node.driver
        if node.driver_opts:
            entry["DriverOpts"] = dict(node.driver_opts)
        if status.status:
            entry["Status"] = status.status
        if status.version:
            entry["Version"] = status.version
        if status.error:
            entry["Err"] = status.error
        platforms = [p.rstrip("*") for p in _platforms(node, status)]
        if platforms:
            entry["Platforms"] = platforms
        nodes.append(entry)
    document = {
        "Name": builder.name,
        "Driver": builder.driver,
        "Dynamic": False,
        "Nodes": nodes,
        "Current": current,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def inspect_text(builder: Builder, statuses: Sequence[NodeStatus]) -> str:
    """`polybuild inspect`: the builder, then each node's endpoint, status and platforms."""
    blocks = [_align([["Name:", builder.name], ["Driver:", builder.driver]], 1), ["", "Nodes:"]]
    for i, (node, status) in enumerate(zip(builder.nodes, statuses, strict=True)):
        rows = [["Name:", node.name], ["Endpoint:", node.endpoint]]
        if node.driver != builder.driver:
            rows.append(["Driver:", node.driver])
        if node.driver_opts:
            opts = " ".join(f"{k}={json.dumps(v)}" for k, v in node.driver_opts)
            rows.append(["Driver Options:", opts])
        if status.status == ERROR:
            rows.append(["Error:", status.error])
        else:
            rows.append(["Status:", status.status])
            if status.version:
                engine = "BuildKit" if node.is_buildkit else "Polybuild"
                rows.append([f"{engine} version:", status.version])
            platforms = _platforms(node, status)
            if platforms:
                rows.append(["Platforms:", ", ".join(platforms)])
        blocks.append(([""] if i else []) + _align(rows, 1))
    return "\n".join(line for block in blocks for line in block) + "\n"


__all__ = ["builder_json", "inspect_text", "ls_errors", "ls_table", "truncated"]
