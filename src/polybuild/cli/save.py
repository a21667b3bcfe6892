"""`polybuild save`: write images, every platform, into one OCI layout tarball."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from polybuild.errors import UsageError
from polybuild.image.archive import save_archive, save_archive_file
from polybuild.image.store import ImageStore


@dataclass(frozen=True, slots=True)
class SaveOptions:
    images: tuple[str, ...]
    output: Path | None = None


def run_save(options: SaveOptions, store: ImageStore | None = None) -> None:
    """Save the images to `output` (atomically) or to stdout when it is not a terminal."""
    store = store or ImageStore()
    if options.output is None or str(options.output) == "-":
        stdout = click.get_binary_stream("stdout")
        if stdout.isatty():
            raise UsageError(
                "cowardly refusing to save to a terminal",
                hint="use the -o flag or redirect the output",
            )
        save_archive(store, options.images, stdout)
        stdout.flush()
        return
    if options.output.is_dir():
        raise UsageError(
            f"{options.output} is a directory",
            hint="give the path of the tar file to write",
        )
    save_archive_file(store, options.images, options.output)


@click.command("save", help="Save images (all platforms) to an OCI layout tarball.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write to this file instead of stdout.",
)
@click.argument("images", nargs=-1, required=True)
def command(images: tuple[str, ...], output: Path | None) -> None:
    run_save(SaveOptions(images, output))
