"""`polybuild version`: one line, as `docker buildx version` prints it (name, then version)."""

from __future__ import annotations

import sys

import click

from polybuild import __version__


@click.command("version")
def command() -> None:
    """Show polybuild's version."""
    python = ".".join(str(n) for n in sys.version_info[:3])
    click.echo(f"polybuild v{__version__} (python {python})")
