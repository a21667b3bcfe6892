"""How `ls` and `inspect` print builders: buildx's table, JSON lines and Go templates
(`--format`, through docker's formatter), and its inspect block."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from polybuild.builders import Builder, Node, NodeStatus, platforms_in_groups
from polybuild.builders.status import ERROR
from polybuild.cli.builders_template import builder_value
from polybuild.cli.go_format import TABLE, Format, Item, go_json, item, write

_INDENT = " \\_ "  # buildx marks node rows so
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


LS_DEFAULT = "table {{.Name}}\t{{.DriverEndpoint}}\t{{.Status}}\t{{.Buildkit}}\t{{.Platforms}}"
LS_HEADERS = {
    "Name": "NAME/NODE",
    "DriverEndpoint": "DRIVER/ENDPOINT",
    "LastActivity": "LAST ACTIVITY",
    "Status": "STATUS",
    "Buildkit": "BUILDKIT",
    "Platforms": "PLATFORMS",
}


def _ls_item(
    builder: Builder,
    statuses: Sequence[NodeStatus],
    node: tuple[Node, NodeStatus] | None,
    current: bool,
    format_: Format,
    trunc: bool,
) -> Item:
    """A row as buildx's lsContext shows it: a builder's (`node` None) or one of its nodes'."""
    table = format_.is_table

    def name() -> str:
        if node is None:
            return builder.name + ("*" if current and table else "")
        return _INDENT + node[0].name if table else node[0].name

    def endpoint() -> str:
        if node is None:
            return builder.driver
        return _INDENT + node[0].endpoint if table else node[0].endpoint

    def platforms() -> str:
        if node is None:
            return ""
        shown = _platforms(*node)
        return truncated(shown) if trunc and table else ", ".join(shown)

    methods = {
        "Name": name,
        "DriverEndpoint": endpoint,
        "LastActivity": lambda: "",  # polybuild does not record a builder's last use
        "Status": lambda: "" if node is None else node[1].status,
        "Buildkit": lambda: "" if node is None else node[1].version,
        "Platforms": platforms,
        "Error": lambda: "" if node is None else node[1].error,
        "FullHeader": lambda: LS_HEADERS,
        "Builder": lambda: builder_value(builder, statuses, current),
    }
    return item("commands.lsContext", methods, lambda: builder_json(builder, statuses, current))


def ls_output(
    entries: Sequence[tuple[Builder, Sequence[NodeStatus]]],
    current: str,
    format_text: str = TABLE,
    *,
    trunc: bool = True,
) -> str:
    """`polybuild ls [--format]`: a row per builder (the current one marked * in tables) and,
    but for `json`, per node, through docker's formatter as buildx's lsPrint."""
    format_ = Format(LS_DEFAULT if format_text == TABLE else format_text)
    items = []
    for builder, statuses in entries:
        here = builder.name == current
        items.append(_ls_item(builder, statuses, None, here, format_, trunc))
        if format_.is_json:
            continue
        for pair in zip(builder.nodes, statuses, strict=True):
            items.append(_ls_item(builder, statuses, pair, here, format_, trunc))
    return write(format_, items, LS_HEADERS)


def ls_table(
    entries: Sequence[tuple[Builder, Sequence[NodeStatus]]], current: str, *, trunc: bool = True
) -> str:
    """`polybuild ls`: buildx's default table."""
    return ls_output(entries, current, TABLE, trunc=trunc)


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
    return go_json(document, escape_html=True)


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


__all__ = [
    "LS_DEFAULT",
    "LS_HEADERS",
    "builder_json",
    "inspect_text",
    "ls_errors",
    "ls_output",
    "ls_table",
    "truncated",
]
