"""`polybuild imagetools inspect|create`: work on images in registries, as buildx does."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from polybuild.errors import UsageError

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class InspectOptions:
    image: str
    raw: bool = False
    format: str | None = None


@dataclass(frozen=True, slots=True)
class CreateOptions:
    sources: tuple[str, ...]
    tags: tuple[str, ...] = ()
    append: bool = False
    dry_run: bool = False
    platforms: tuple[str, ...] = ()


def run_inspect(
    options: InspectOptions, *, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """Print the image as the options say; `transport` replaces the network (tests)."""
    from polybuild.image import reference
    from polybuild.imagetools.gotemplate import compile_template
    from polybuild.imagetools.inspect import (
        Inspection,
        formatted,
        inspect,
        is_human,
        needs_attestations,
    )
    from polybuild.registry import RegistryClient

    if options.raw and options.format:
        raise UsageError("format and raw cannot be used together")
    ref = reference.parse(options.image)
    template = options.format or ""
    human = is_human(template)
    tree = None if human else compile_template(template)

    async def fetch() -> Inspection:
        async with RegistryClient(transport=transport) as client:
            return await inspect(
                client,
                ref,
                with_configs=not human and not options.raw,
                attestations=not human and needs_attestations(template),
                name=options.image,
            )

    inspection = asyncio.run(fetch())
    if options.raw:
        # Exactly the registry's bytes (as skopeo inspect --raw): they are what the digest is of.
        sys.stdout.buffer.write(inspection.top.raw)
        sys.stdout.flush()
        return
    # As buildx: a template's output as it is, without a newline added.
    click.echo(formatted(inspection, tree), nl=False)


def run_create(
    options: CreateOptions, *, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """Combine the sources into one index and push it; `transport` replaces the network."""
    from polybuild.image import reference
    from polybuild.imagetools.create import create
    from polybuild.platforms import parse_list
    from polybuild.registry import RegistryClient

    sources = [reference.parse(s) for s in options.sources]
    tags = [reference.parse(t) for t in options.tags]
    platforms = parse_list(",".join(options.platforms)) if options.platforms else []

    async def go() -> bytes:
        async with RegistryClient(transport=transport) as client:
            index = await create(
                client,
                sources,
                tags,
                append=options.append,
                dry_run=options.dry_run,
                platforms=platforms,
                log=None if options.dry_run else click.echo,
            )
            return index.raw

    raw = asyncio.run(go())
    if options.dry_run:
        sys.stdout.buffer.write(raw + b"\n")
        sys.stdout.flush()


@click.group("imagetools")
def command() -> None:
    """Commands to work on images in registries."""


@command.command("inspect")
@click.option("--raw", is_flag=True, help="Show the original, unformatted JSON manifest.")
@click.option(
    "--format",
    "format_",
    metavar="TEMPLATE",
    help='Go template, e.g. "{{json .Manifest}}" or \'{{json (index .Image "linux/arm64")}}\'.',
)
@click.argument("image")
def inspect_command(image: str, raw: bool, format_: str | None) -> None:
    """Show details of IMAGE in the registry."""
    run_inspect(InspectOptions(image, raw, format_))


@command.command("create")
@click.option("-t", "--tag", "tags", multiple=True, metavar="NAME", help="Name to push to.")
@click.option("--append", is_flag=True, help="Add the sources to the image at the first tag.")
@click.option("--dry-run", is_flag=True, help="Print the index instead of pushing it.")
@click.option(
    "-p", "--platform", "platforms", multiple=True, metavar="PLATFORM", help="Keep only these."
)
@click.argument("sources", nargs=-1)
def create_command(
    sources: tuple[str, ...],
    tags: tuple[str, ...],
    append: bool,
    dry_run: bool,
    platforms: tuple[str, ...],
) -> None:
    """Create a new image from the manifests of SOURCES (images in registries)."""
    run_create(CreateOptions(sources, tags, append, dry_run, platforms))
