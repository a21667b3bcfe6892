"""`polybuild import`: make (or extend) a multi-platform image from a root filesystem tarball."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from polybuild.errors import ImageError, UsageError


@click.command("import")
@click.option(
    "--platform",
    required=True,
    metavar="PLATFORM",
    help="The platform of the root filesystem (os/arch[/variant]).",
)
@click.option(
    "--compression",
    type=click.Choice(["gzip", "zstd", "uncompressed"]),
    default="gzip",
    show_default=True,
    help="Layer compression.",
)
@click.argument("tarball", metavar="ROOTFS.tar|-")
@click.argument("name")
def command(platform: str, compression: str, tarball: str, name: str) -> None:
    """Import a root filesystem tarball as PLATFORM's variant of image NAME.

    Importing into a NAME that already has other platforms adds this one to its index
    (replacing an older variant of the same platform), so several imports build one
    multi-platform image.
    """
    from polybuild.image import ImageStore
    from polybuild.importer import import_rootfs
    from polybuild.layers import Compression
    from polybuild.platforms import format_platform, parse

    target = parse(platform)
    layer_compression = {
        "gzip": Compression.GZIP,
        "zstd": Compression.ZSTD,
        "uncompressed": Compression.NONE,
    }[compression]
    store = ImageStore()
    if tarball == "-":
        result = import_rootfs(
            store, sys.stdin.buffer, name, target, source="-", compression=layer_compression
        )
    else:
        path = Path(tarball)
        if not path.is_file():
            raise UsageError(f"{tarball}: no such file", hint="give a root filesystem tarball")
        with open(path, "rb") as f:
            try:
                result = import_rootfs(
                    store, f, name, target, source=path.name, compression=layer_compression
                )
            except ImageError as exc:
                raise ImageError(f"{tarball}: {exc.message}", hint=exc.hint) from exc
    click.echo(
        f"{result.name.familiar()} {format_platform(target)} -> {result.manifest.digest}", err=True
    )
    click.echo(str(result.index.digest))
