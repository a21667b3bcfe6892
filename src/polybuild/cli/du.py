"""`polybuild du`: the build cache of a builder's nodes (docker buildx du).

A BuildKit daemon node lists its cache records (Control.DiskUsage); this machine's node
shows what its data root keeps for builds. An ssh node keeps its cache in its own data root:
run `polybuild du` there.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Sequence
from pathlib import Path

import click

from polybuild.builders import Node
from polybuild.buildkit.records import CacheRecord


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def human(size: float) -> str:
    """Sizes as buildx prints them (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.2f}{unit}"
        size /= 1000
    return f"{size:.2f}TB"


def records_table(records: Sequence[CacheRecord], *, verbose: bool) -> list[str]:
    """buildx's du table (largest first), then Shared/Private/Reclaimable/Total."""
    lines: list[str] = []
    ordered = sorted(records, key=lambda r: -r.size)
    if verbose:
        for record in ordered:
            used = (
                datetime.datetime.fromtimestamp(record.last_used, datetime.UTC).isoformat()
                if record.last_used
                else "-"
            )
            lines += [
                f"ID:\t\t{record.id}",
                f"Created by:\t{record.description}" if record.description else "",
                f"Type:\t\t{record.record_type}",
                f"In use:\t\t{str(record.in_use).lower()}",
                f"Reclaimable:\t{str(record.reclaimable).lower()}",
                f"Shared:\t\t{str(record.shared).lower()}",
                f"Size:\t\t{human(record.size)}",
                f"Last used:\t{used}",
                "",
            ]
        lines = [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]
    else:
        lines.append(f"{'ID':<46}{'RECLAIMABLE':<14}{'SIZE':<12}LAST ACCESSED")
        for record in ordered:
            mark = "*" if record.in_use else ""
            used = (
                datetime.datetime.fromtimestamp(record.last_used, datetime.UTC).strftime(
                    "%Y-%m-%d %H:%M"
                )
                if record.last_used
                else ""
            )
            lines.append(
                f"{record.id + mark:<46}{str(record.reclaimable).lower():<14}"
                f"{human(record.size):<12}{used}".rstrip()
            )
    shared = sum(r.size for r in records if r.shared)
    lines += [
        f"Shared:\t\t{human(shared)}",
        f"Private:\t{human(sum(r.size for r in records) - shared)}",
        f"Reclaimable:\t{human(sum(r.size for r in records if r.reclaimable))}",
        f"Total:\t\t{human(sum(r.size for r in records))}",
    ]
    return lines


def local_lines(root: Path) -> list[str]:
    """What this machine's data root keeps for builds, by kind."""
    kinds = (
        ("build cache records", [root / "cache"]),
        ("unpacked layers", [root / "layers"]),
        ("cache mounts", [root / "cache-mounts"]),
        ("remote contexts", [root / "remote"]),
    )
    lines, total = [], 0
    for name, paths in kinds:
        size = sum(_size(p) if p.is_dir() else (p.stat().st_size if p.exists() else 0)
                   for p in paths)  # fmt: skip
        total += size
        lines.append(f"{name + ':':<22}{human(size)}")
    lines.append(f"{'Total:':<22}{human(total)}")
    return lines


@click.command("du")
@click.option("--builder", "builder_option", default=None, help="Override the configured builder.")
@click.option("--verbose", is_flag=True, help="Show every cache record in full.")
def command(builder_option: str | None, verbose: bool) -> None:
    """Show the build cache of the builder's nodes."""
    from polybuild.builders import BuilderStore
    from polybuild.dataroot import data_root

    root = data_root()
    store = BuilderStore(root)
    builder = store.get(builder_option) if builder_option else store.current()
    blocks: list[list[str]] = []
    local_done = False
    for node in builder.nodes:
        if node.is_buildkit:
            blocks.append([f"Node: {node.name} ({node.endpoint})", *_daemon(node, verbose)])
        elif node.is_local and not local_done:
            local_done = True
            blocks.append([f"Node: {node.name} (this machine: {root})", *local_lines(root)])
        elif not node.is_local:
            blocks.append([f"Node: {node.name} ({node.endpoint}): its cache is in its own "
                           "data root; run `polybuild du` there"])  # fmt: skip
    click.echo("\n\n".join("\n".join(block) for block in blocks))


def _daemon(node: Node, verbose: bool) -> list[str]:
    from polybuild.imagebuild.buildkit_driver import daemon_disk_usage

    return records_table(asyncio.run(daemon_disk_usage(node)), verbose=verbose)
