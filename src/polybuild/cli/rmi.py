"""`polybuild rmi`: remove images (names or IDs) and the blobs nothing else uses."""

from __future__ import annotations

from dataclasses import dataclass

import click

from polybuild.image.store import ImageStore


@dataclass(frozen=True, slots=True)
class RmiOptions:
    images: tuple[str, ...]
    force: bool = False


def run_rmi(options: RmiOptions, store: ImageStore | None = None) -> None:
    """Untag the names, delete images left without a name, and collect their blobs."""
    from polybuild.solver.cache import cached_blobs

    store = store or ImageStore()
    # Layers the build cache refers to stay: removing an image does not empty the cache.
    removal = store.remove(list(options.images), force=options.force, keep=cached_blobs(store.root))
    for name in removal.untagged:
        click.echo(f"Untagged: {name.familiar()}")
    for digest in removal.deleted:
        click.echo(f"Deleted: {digest}")


@click.command("rmi", help="Remove one or more images from the local image store.")
@click.option(
    "-f", "--force", is_flag=True, help="Remove an image ID even if it has several names."
)
@click.argument("images", nargs=-1, required=True)
def command(images: tuple[str, ...], force: bool) -> None:
    run_rmi(RmiOptions(images, force))
