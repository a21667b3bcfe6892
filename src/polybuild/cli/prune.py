"""`polybuild prune`: remove build cache (docker buildx prune)."""

from __future__ import annotations

import sys

import click

from polybuild.errors import UsageError


@click.command("prune")
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Also remove RUN --mount=type=cache directories."
)
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
def command(all_: bool, force: bool) -> None:
    """Remove the build cache, and blobs and unpacked layers no stored image uses."""
    from polybuild.prune import prune
    from polybuild.runtime import Runtime

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
    report = prune(Runtime(), all_=all_)
    click.echo(
        f"Removed {report.cache_entries} cache records, {report.blobs} blobs, "
        f"{report.layers} unpacked layers, {report.cache_mounts} cache mounts"
    )
    click.echo(f"Total:\t{report.bytes_freed / 1e6:.2f}MB")
