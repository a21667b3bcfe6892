"""`polybuild load`: load images from an OCI layout tarball (or directory, or stdin)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from polybuild.errors import UsageError
from polybuild.image.archive import Loaded, load_archive, load_directory
from polybuild.image.store import ImageStore


@dataclass(frozen=True, slots=True)
class LoadOptions:
    input: Path | None = None
    quiet: bool = False


def run_load(options: LoadOptions, store: ImageStore | None = None) -> list[Loaded]:
    """Load every image the layout holds, verifying every blob, and report their names."""
    store = store or ImageStore()
    if options.input is None:
        stdin = click.get_binary_stream("stdin")
        if stdin.isatty():
            raise UsageError(
                "requested load from stdin, but stdin is a terminal",
                hint="use -i FILE, or pipe an OCI layout tarball in",
            )
        loaded = load_archive(store, stdin)
    elif options.input.is_dir():
        loaded = load_directory(store, options.input)
    else:
        try:
            handle = options.input.open("rb")
        except OSError as exc:
            raise UsageError(f"cannot open {options.input}: {exc.strerror}") from exc
        with handle:
            loaded = load_archive(store, handle)
    if not options.quiet:
        for image in loaded:
            if image.name is not None:
                click.echo(f"Loaded image: {image.name.familiar()}")
            else:
                click.echo(f"Loaded image ID: {image.target.digest}")
    return loaded


@click.command("load", help="Load images from an OCI layout tarball or directory.")
@click.option(
    "-i",
    "--input",
    "input_",
    type=click.Path(path_type=Path),
    help="Read from this tar archive or layout directory instead of stdin.",
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output.")
def command(input_: Path | None, quiet: bool) -> None:
    run_load(LoadOptions(input_, quiet))
