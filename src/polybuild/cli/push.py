"""`polybuild push`: upload an image from the local store to a registry."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class PushOptions:
    image: str
    destinations: tuple[str, ...] = ()
    docker_media_types: bool = False
    quiet: bool = False


def run_push(options: PushOptions, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
    """Push the stored image to its own name (and any extra destinations).

    `transport` replaces the network (a fake registry in tests).
    """
    from polybuild.image import reference
    from polybuild.image.store import ImageStore
    from polybuild.registry.transfer import push

    store = ImageStore()
    record = store.resolve(options.image)
    names = list(options.destinations)
    if not names:
        names = [str(record.name) if record.name else options.image]
    refs = [reference.parse(name) for name in names]
    log = None if options.quiet else click.echo
    pushed = asyncio.run(
        push(
            store.content,
            record.target,
            refs,
            docker_media_types=options.docker_media_types,
            log=log,
            transport=transport,
        )
    )
    click.echo(f"digest: {pushed.digest} size: {pushed.size}")


@click.command("push")
@click.option(
    "--to",
    "destinations",
    multiple=True,
    metavar="NAME",
    help="Push to this name instead of the image's own (repeatable).",
)
@click.option(
    "--docker-media-types",
    is_flag=True,
    help="Push Docker schema2 manifests and a manifest list (oci-mediatypes=false).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only print the pushed digest.")
@click.argument("image")
def command(
    image: str, destinations: tuple[str, ...], docker_media_types: bool, quiet: bool
) -> None:
    """Push IMAGE (a name in the local store) to its registry.

    Blobs the registry already has are not uploaded again; blobs in another repository of
    the same registry are mounted. Each platform's manifest goes first, the index last.
    """
    run_push(PushOptions(image, destinations, docker_media_types, quiet))
