"""`polybuild prune`: remove build cache (docker buildx prune)."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from polybuild.errors import UsageError

if TYPE_CHECKING:
    from polybuild.builders import Node


@click.command("prune")
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Also remove RUN --mount=type=cache directories."
)
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--builder", "builder_option", default=None, help="Override the configured builder.")
def command(all_: bool, force: bool, builder_option: str | None) -> None:
    """Remove the build cache, and blobs and unpacked layers no stored image uses, on the
    builder's nodes: this machine's data root, and each BuildKit daemon's cache (an ssh
    node keeps its cache in its own data root: run `polybuild prune` there)."""
    from polybuild.builders import BuilderStore
    from polybuild.dataroot import data_root
    from polybuild.prune import prune
    from polybuild.runtime import Runtime

    store = BuilderStore(data_root())
    builder = store.get(builder_option) if builder_option else store.current()

    if not force:
        if not sys.stdin.isatty():
            raise UsageError(
                "prune asks for confirmation, and stdin is not a terminal",
                hint="use --force to prune without asking",
            )
        what = "all build cache, including cache mounts" if all_ else "all build cache"
        if not click.confirm(
            f"WARNING! This will remove {what}. Are you sure you want to continue?", default=False
        ):
            return
    if any(node.is_local for node in builder.nodes):
        report = prune(Runtime(), all_=all_)
        click.echo(
            f"Removed {report.cache_entries} cache records, {report.blobs} blobs, "
            f"{report.layers} unpacked layers, {report.cache_mounts} cache mounts"
        )
        click.echo(f"Total:\t{report.bytes_freed / 1e6:.2f}MB")
    for node in builder.nodes:
        if node.is_buildkit:
            _prune_daemon(node, all_)
        elif not node.is_local:
            click.echo(
                f"{node.name} ({node.endpoint}): its cache is in its own data root; run "
                "`polybuild prune` there",
                err=True,
            )


def _prune_daemon(node: Node, all_: bool) -> None:
    from polybuild.imagebuild.buildkit_driver import daemon_prune

    removed = asyncio.run(daemon_prune(node, all_=all_))
    size = sum(record.size for record in removed)
    click.echo(f"{node.name} ({node.endpoint}): removed {len(removed)} cache records")
    click.echo(f"Total:\t{size / 1e6:.2f}MB")
