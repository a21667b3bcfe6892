"""`polybuild prune`: remove build cache (docker buildx prune)."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from polybuild.errors import UsageError

if TYPE_CHECKING:
    from polybuild.builders import Node
    from polybuild.prune_policy import PrunePolicy


@click.command("prune")
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Also remove RUN --mount=type=cache directories."
)
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--builder", "builder_option", default=None, help="Override the configured builder.")
@click.option("--filter", "filters", multiple=True, metavar="until=DURATION",
              help="Remove only cache unused for this long (e.g. until=24h).")  # fmt: skip
@click.option("--reserved-space", default=None, metavar="SIZE", help="Cache to keep at least.")
@click.option("--keep-storage", default=None, hidden=True)  # buildx's old name of the above
@click.option("--max-used-space", default=None, metavar="SIZE", help="Cache to keep at most.")
@click.option("--min-free-space", default=None, metavar="SIZE", help="Disk space to leave free.")
@click.option("--verbose", is_flag=True, help="List what was removed.")
def command(
    all_: bool,
    force: bool,
    builder_option: str | None,
    filters: tuple[str, ...],
    reserved_space: str | None,
    keep_storage: str | None,
    max_used_space: str | None,
    min_free_space: str | None,
    verbose: bool,
) -> None:
    """Remove the build cache, and blobs and unpacked layers no stored image uses, on the
    builder's nodes: this machine's data root, and each BuildKit daemon's cache (an ssh
    node keeps its cache in its own data root: run `polybuild prune` there)."""
    from polybuild.builders import BuilderStore
    from polybuild.dataroot import data_root
    from polybuild.prune import prune
    from polybuild.prune_policy import parse_policy
    from polybuild.runtime import Runtime

    policy = parse_policy(filters, reserved_space or keep_storage, max_used_space, min_free_space)

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
        report = prune(Runtime(), all_=all_, policy=policy)
        click.echo(
            f"Removed {report.cache_entries} cache records, {report.blobs} blobs, "
            f"{report.layers} unpacked layers, {report.cache_mounts} cache mounts"
        )
        click.echo(f"Total:\t{report.bytes_freed / 1e6:.2f}MB")
    for node in builder.nodes:
        if node.is_buildkit:
            _prune_daemon(node, all_, policy, verbose)
        elif not node.is_local:
            click.echo(
                f"{node.name} ({node.endpoint}): its cache is in its own data root; run "
                "`polybuild prune` there",
                err=True,
            )


def _prune_daemon(node: Node, all_: bool, policy: PrunePolicy, verbose: bool) -> None:
    from polybuild.imagebuild.buildkit_driver import daemon_prune

    removed = asyncio.run(daemon_prune(node, all_=all_, policy=policy))
    size = sum(record.size for record in removed)
    if verbose:
        for record in removed:
            click.echo(f"{record.id}\t{record.size / 1e6:.2f}MB\t{record.description}")
    click.echo(f"{node.name} ({node.endpoint}): removed {len(removed)} cache records")
    click.echo(f"Total:\t{size / 1e6:.2f}MB")
