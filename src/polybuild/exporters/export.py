"""Running a build's outputs: assemble the image once per set of options, then hand each
output to the exporter registered for its type."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polybuild.exporters.assemble import AssembledImage, assemble
from polybuild.exporters.base import ExportContext, Exporter, Pusher, Warn
from polybuild.exporters.docker import DockerExporter
from polybuild.exporters.image_output import ImageExporter
from polybuild.exporters.local import LocalExporter
from polybuild.exporters.oci import OciExporter
from polybuild.exporters.spec import ImageOptions, OutputSpec, OutputType
from polybuild.exporters.tar import TarExporter
from polybuild.image.platform_image import ExportSource
from polybuild.image.store import ImageStore

# One exporter per output type, looked up by name (`-o type=NAME`); cacheonly has none
# because parse_outputs drops it.
EXPORTERS: Mapping[OutputType, Exporter] = {
    OutputType.IMAGE: ImageExporter(),
    OutputType.OCI: OciExporter(),
    OutputType.DOCKER: DockerExporter(),
    OutputType.LOCAL: LocalExporter(),
    OutputType.TAR: TarExporter(),
}


def _default_warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """One written output: the image as exported and where it went (None: store/registry)."""

    output: OutputSpec
    image: AssembledImage
    path: Path | None


def check_outputs(
    outputs: Sequence[OutputSpec],
    context: ExportContext,
    *,
    exporters: Mapping[OutputType, Exporter] = EXPORTERS,
) -> None:
    """UsageError for outputs that cannot work, so the build fails before it starts."""
    for output in outputs:
        exporters[output.type].check(output, context)


async def export_outputs(
    source: ExportSource,
    outputs: Sequence[OutputSpec],
    context: ExportContext,
    *,
    exporters: Mapping[OutputType, Exporter] = EXPORTERS,
) -> list[ExportResult]:
    """Write every output of a build, in order; the first failure stops the rest.

    The image is assembled once per distinct ImageOptions. With a store, everything runs
    under a store lease, so blobs written here survive a concurrent garbage collection
    until they are named. Warnings (media type changes, what a docker archive holds,
    entries left out of a filesystem export) go to `context.warn`. The outputs were checked
    with `check_outputs` before the build started.
    """
    assembled: dict[ImageOptions, AssembledImage] = {}
    results: list[ExportResult] = []
    lease = context.store.lease() if context.store is not None else contextlib.nullcontext()
    with lease:
        for output in outputs:
            options = output.image
            if source.predicates:
                from polybuild.exporters.attach import media_types_for  # a build that attests

                multi = len(source.platforms) > 1 or source.multi_platform
                options = media_types_for(options, source.predicates, output, multi)
            if options not in assembled:
                image = await asyncio.to_thread(assemble, source, options)
                for message in image.warnings:
                    context.warn(message)
                assembled[options] = image
            image = assembled[options]
            if source.predicates:
                from polybuild.exporters.attach import attested

                image = await asyncio.to_thread(attested, image, source.predicates, output)
            warning = await exporters[output.type].export(output, image, context)
            if warning:
                context.warn(warning)
            path = Path(output.dest) if output.dest and output.dest != "-" else None
            results.append(ExportResult(output, image, path))
    return results


def export(
    source: ExportSource,
    outputs: Sequence[OutputSpec],
    *,
    store: ImageStore | None = None,
    pusher: Pusher | None = None,
    stdout: BinaryIO | None = None,
    warn: Warn = _default_warn,
    source_date_epoch: int | None = None,
) -> list[ExportResult]:
    """The synchronous front of `export_outputs`, for callers outside an event loop."""
    context = ExportContext(
        stdout=stdout if stdout is not None else sys.stdout.buffer,
        warn=warn,
        store=store,
        pusher=pusher,
        source_date_epoch=source_date_epoch,
    )
    check_outputs(outputs, context)
    return asyncio.run(export_outputs(source, outputs, context))


__all__ = ["EXPORTERS", "ExportResult", "check_outputs", "export", "export_outputs"]
