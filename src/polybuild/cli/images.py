"""`polybuild images`: list the images in the local image store."""

from __future__ import annotations

import json
from dataclasses import dataclass

import click

from polybuild.image.store import ImageStore, ImageSummary
from polybuild.platforms import format_platform


@dataclass(frozen=True, slots=True)
class ImagesOptions:
    format: str = "table"
    no_trunc: bool = False
    digests: bool = False
    quiet: bool = False


def human_size(size: int) -> str:
    """Decimal units with three significant digits, as `docker images` shows sizes."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _row(summary: ImageSummary, options: ImagesOptions) -> dict[str, str]:
    record = summary.record
    digest = record.target.digest
    return {
        "REPOSITORY": record.name.familiar_name if record.name else "<none>",
        "TAG": record.name.tag if record.name else "<none>",
        "DIGEST": str(digest),
        "IMAGE ID": str(digest) if options.no_trunc else digest.short(),
        "PLATFORMS": ",".join(format_platform(p) for p in summary.platforms) or "-",
        "SIZE": human_size(summary.size),
    }


def _json(summary: ImageSummary) -> str:
    record = summary.record
    return json.dumps(
        {
            "Name": str(record.name) if record.name else None,
            "Repository": record.name.familiar_name if record.name else "<none>",
            "Tag": record.name.tag if record.name else "<none>",
            "ID": str(record.target.digest),
            "Digest": str(record.target.digest),
            "MediaType": record.target.media_type,
            "Platforms": [format_platform(p) for p in summary.platforms],
            "Size": summary.size,
        },
        sort_keys=True,
    )


def run_images(options: ImagesOptions, store: ImageStore | None = None) -> None:
    """Print the store's images as a table, IDs or JSON lines."""
    summaries = list((store or ImageStore()).summaries())
    if options.quiet:
        for summary in summaries:
            digest = summary.record.target.digest
            click.echo(str(digest) if options.no_trunc else digest.short())
        return
    if options.format == "json":
        for summary in summaries:
            click.echo(_json(summary))
        return
    columns = ["REPOSITORY", "TAG", *(["DIGEST"] if options.digests else [])]
    columns += ["IMAGE ID", "PLATFORMS", "SIZE"]
    rows = [_row(s, options) for s in summaries]
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in columns}
    for cells in [dict(zip(columns, columns, strict=True)), *rows]:
        click.echo("   ".join(cells[c].ljust(widths[c]) for c in columns).rstrip())


@click.command("images", help="List images in the local image store.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output a table, or one JSON object per image.",
)
@click.option("--no-trunc", is_flag=True, help="Show full image IDs.")
@click.option("--digests", is_flag=True, help="Add a column with the full digest.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
def command(format_: str, no_trunc: bool, digests: bool, quiet: bool) -> None:
    run_images(ImagesOptions(format_, no_trunc, digests, quiet))
