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

    from polybuild.image.reference import Reference


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
    files: tuple[str, ...] = ()
    annotations: tuple[str, ...] = ()
    prefer_index: bool = True
    progress: str = "auto"
    metadata_file: str | None = None


PROGRESS_MODES = ("auto", "none", "plain", "quiet", "rawjson", "tty")
_GO_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


class _StepPrinter:
    """create's progress on stderr as BuildKit's plain view numbers steps (rawjson: its
    SolveStatus JSON lines; quiet/none: nothing)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.number = 0
        self.started = 0.0
        self.digest = ""
        self.name = ""

    def _json(self, document: dict[str, object]) -> None:
        import json

        click.echo(json.dumps(document), err=True)

    def step(self, name: str) -> None:
        import hashlib
        import os
        import time

        self.number += 1
        self.started = time.monotonic()
        self.name = f"[internal] {name}"
        self.digest = "sha256:" + hashlib.sha256(os.urandom(16)).hexdigest()
        if self.mode == "rawjson":
            self._json(
                {"vertexes": [{"digest": self.digest, "name": self.name, "started": _now()}]}
            )
        elif self.mode not in ("quiet", "none"):
            click.echo(f"#{self.number} {self.name}", err=True)

    def log(self, text: str) -> None:
        import base64
        import time

        if self.mode == "rawjson":
            data = base64.b64encode(text.encode() + b"\n").decode()
            self._json(
                {"logs": [{"vertex": self.digest, "stream": 1, "data": data, "timestamp": _now()}]}
            )
        elif self.mode not in ("quiet", "none"):
            click.echo(f"#{self.number} {time.monotonic() - self.started:.3f} {text}", err=True)

    def done(self) -> None:
        import time

        if self.mode == "rawjson":
            vertex = {"digest": self.digest, "name": self.name, "completed": _now()}
            self._json({"vertexes": [vertex]})
        elif self.mode not in ("quiet", "none"):
            click.echo(f"#{self.number} DONE {time.monotonic() - self.started:.1f}s", err=True)


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


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
    """Combine the sources into one image and push it; `transport` replaces the network."""
    from pathlib import Path

    from polybuild.image import reference
    from polybuild.imagetools.create import create
    from polybuild.imagetools.sources import parse_annotations, parse_source
    from polybuild.platforms import parse_list
    from polybuild.registry import RegistryClient

    if options.progress not in PROGRESS_MODES:
        raise UsageError(f"invalid progress mode {options.progress!r}")
    texts: list[str] = []
    for name in options.files:
        try:
            texts.append(Path(name).read_text())
        except OSError as exc:
            raise UsageError(f"open {name}: {exc.strerror or exc}") from None
    texts.extend(options.sources)
    if not texts:
        raise UsageError("no sources specified")
    if not options.dry_run and not options.tags:
        raise UsageError("can't push with no tags specified, please set --tag or --dry-run")
    tags = [reference.parse(t) for t in options.tags]
    sources = [parse_source(text) for text in texts]
    annotations = parse_annotations(options.annotations)
    platforms = parse_list(",".join(options.platforms)) if options.platforms else []
    printer = _StepPrinter(options.progress)

    async def go() -> tuple[bytes, str, int, str]:
        async with RegistryClient(transport=transport) as client:
            document = await create(
                client,
                sources,
                tags,
                append=options.append,
                dry_run=options.dry_run,
                platforms=platforms,
                annotations=annotations,
                prefer_index=options.prefer_index,
                progress=printer,
            )
            return document.raw, document.media_type, len(document.raw), str(document.digest)

    raw, media_type, size, digest = asyncio.run(go())
    if options.dry_run:
        sys.stdout.buffer.write(raw + b"\n")
        sys.stdout.flush()
        return
    if options.metadata_file:
        _write_metadata(options.metadata_file, media_type, digest, size, tags)


def _write_metadata(
    path: str, media_type: str, digest: str, size: int, tags: list[Reference]
) -> None:
    """buildx's --metadata-file of create: the descriptor and the repositories pushed to."""
    from pathlib import Path

    from polybuild.exporters.metadata import write_metadata_file

    repositories = sorted({t.name for t in tags})
    descriptor = {"mediaType": media_type, "digest": digest, "size": size}
    write_metadata_file(
        Path(path),
        {"containerimage.descriptor": descriptor, "image.name": ",".join(repositories)},
    )


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


def _go_bool(ctx: click.Context, param: click.Parameter, value: str) -> bool:
    """A Go bool flag's value (`--prefer-index=false`), as strconv.ParseBool reads it."""
    del ctx, param
    if value not in _GO_BOOLS:
        raise click.BadParameter(f'invalid argument "{value}": parse error')
    return _GO_BOOLS[value]


@command.command("create")
@click.option(
    "-f", "--file", "files", multiple=True, metavar="FILE", help="Read source descriptor from file."
)
@click.option(
    "-t", "--tag", "tags", multiple=True, metavar="NAME", help="Set reference for new image."
)
@click.option("--append", is_flag=True, help="Append to existing manifest.")
@click.option("--dry-run", is_flag=True, help="Show final image instead of pushing.")
@click.option(
    "--annotation",
    "annotations",
    multiple=True,
    metavar="TYPE:KEY=VALUE",
    help="Add annotation to the image.",
)
@click.option(
    "--prefer-index",
    is_flag=False,
    flag_value="true",
    default="true",
    metavar="BOOL",
    callback=_go_bool,
    help="When only a single source is specified, prefer outputting an image index or manifest "
    "list instead of performing a carbon copy (--prefer-index=false to copy).",
)
@click.option(
    "--progress",
    default="auto",
    metavar="MODE",
    help='Set type of progress output ("auto", "none", "plain", "rawjson", "tty").',
)
@click.option(
    "-p",
    "--platform",
    "platforms",
    multiple=True,
    metavar="PLATFORM",
    help="Filter specified platforms of target image.",
)
@click.option("--metadata-file", metavar="FILE", help="Write create result metadata to a file.")
@click.argument("sources", nargs=-1)
def create_command(
    sources: tuple[str, ...],
    files: tuple[str, ...],
    tags: tuple[str, ...],
    append: bool,
    dry_run: bool,
    annotations: tuple[str, ...],
    prefer_index: bool,
    progress: str,
    platforms: tuple[str, ...],
    metadata_file: str | None,
) -> None:
    """Create a new image based on source images (references, digests or descriptors)."""
    run_create(
        CreateOptions(
            sources,
            tags,
            append,
            dry_run,
            platforms,
            files,
            annotations,
            prefer_index,
            progress,
            metadata_file,
        )
    )
