"""`polybuild pull`: download an image (this machine's variant, some, or all) into the store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from polybuild.errors import UsageError

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class PullOptions:
    image: str
    platforms: tuple[str, ...] = ()
    all_platforms: bool = False
    quiet: bool = False


def run_pull(options: PullOptions, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
    """Pull into the local image store and print the image's digest and name.

    `transport` replaces the network (a fake registry in tests).
    """
    from polybuild.image import reference
    from polybuild.image.store import ImageStore
    from polybuild.platforms import format_platform, parse_list
    from polybuild.registry import PlatformChoice, pull

    if options.all_platforms and options.platforms:
        raise UsageError("--platform and --all-platforms cannot be used together")
    ref = reference.parse(options.image)
    platforms = parse_list(",".join(options.platforms)) if options.platforms else None
    choice: PlatformChoice = "all" if options.all_platforms else platforms
    if not options.quiet:
        click.echo(f"{ref.tag or ref.digest}: Pulling from {ref.familiar_name}")
    pulled = asyncio.run(pull(ImageStore(), ref, choice, transport=transport))
    if options.quiet:
        click.echo(str(pulled.name or ref))
        return
    for manifest in pulled.manifests:
        label = format_platform(manifest.platform) if manifest.platform else "image"
        click.echo(f"{label}: {manifest.digest}")
    click.echo(f"Digest: {pulled.target.digest}")
    click.echo(f"Status: Downloaded {ref.familiar()}")
    click.echo(str(pulled.name or ref))


@click.command("pull")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="PLATFORM",
    help="Pull this platform's variant (repeat or comma-separate for several).",
)
@click.option("-a", "--all-platforms", is_flag=True, help="Pull every variant of the image.")
@click.option("-q", "--quiet", is_flag=True, help="Only print the image name.")
@click.argument("image")
def command(image: str, platforms: tuple[str, ...], all_platforms: bool, quiet: bool) -> None:
    """Pull IMAGE from a registry into the local image store.

    The variant for this machine is chosen by containerd's rules unless --platform or
    --all-platforms says otherwise. Credentials come from Docker's config.json; mirrors and
    insecure registries from polybuild.toml ($POLYBUILD_CONFIG).
    """
    run_pull(PullOptions(image, platforms, all_platforms, quiet))
