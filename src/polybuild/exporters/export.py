"""Running a build's outputs: assemble the image once per set of options, then write each output."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polybuild.errors import UsageError
from polybuild.exporters.archive import write_docker_archive, write_oci_archive
from polybuild.exporters.assemble import AssembledImage, ExportSource, assemble
from polybuild.exporters.destination import check_dir_dest, check_file_dest, open_file_dest
from polybuild.exporters.filesystem import export_local, export_tar
from polybuild.exporters.image_output import Pusher, push_image, store_image
from polybuild.exporters.spec import ImageOptions, OutputSpec, OutputType
from polybuild.image.store import ImageStore


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
    *,
    stdout: BinaryIO | None = None,
    store: ImageStore | None = None,
    pusher: Pusher | None = None,
) -> None:
    """UsageError for outputs that cannot work, so the build fails before it starts."""
    for output in outputs:
        if output.type in (OutputType.OCI, OutputType.DOCKER, OutputType.TAR) and output.dest:
            check_file_dest(output.dest, stdout)
        if output.type is OutputType.LOCAL and output.dest:
            check_dir_dest(output.dest)
        if _stores(output) and store is None:
            raise UsageError(f"--output: type={output.type} needs the local image store")
        if output.push and pusher is None:
            raise UsageError(
                "--output: push=true was asked but this build has no registry client to push with"
            )


def _stores(output: OutputSpec) -> bool:
    return (output.type is OutputType.IMAGE and output.store) or (
        output.type is OutputType.DOCKER and output.dest is None
    )


def export(
    source: ExportSource,
    outputs: Sequence[OutputSpec],
    *,
    store: ImageStore | None = None,
    pusher: Pusher | None = None,
    stdout: BinaryIO | None = None,
    warn: Callable[[str], None] = _default_warn,
    source_date_epoch: int | None = None,
) -> list[ExportResult]:
    """Write every output of a build, in order; the first failure stops the rest.

    The image is assembled once per distinct ImageOptions. With a store, everything runs
    under a store lease, so blobs written here survive a concurrent garbage collection
    until they are named. Warnings (media type changes, what a docker archive holds,
    entries left out of a filesystem export) go to `warn`.
    """
    out = stdout if stdout is not None else sys.stdout.buffer
    check_outputs(outputs, stdout=out, store=store, pusher=pusher)
    assembled: dict[ImageOptions, AssembledImage] = {}

    def image_for(options: ImageOptions) -> AssembledImage:
        if options not in assembled:
            assembled[options] = assemble(source, options)
            for message in assembled[options].warnings:
                warn(message)
        return assembled[options]

    results: list[ExportResult] = []
    lease = store.lease() if store is not None else contextlib.nullcontext()
    with lease:
        for output in outputs:
            image = image_for(output.image)
            results.append(_export_one(output, image, store, pusher, out, warn, source_date_epoch))
    return results


def _export_one(
    output: OutputSpec,
    image: AssembledImage,
    store: ImageStore | None,
    pusher: Pusher | None,
    stdout: BinaryIO,
    warn: Callable[[str], None],
    source_date_epoch: int | None,
) -> ExportResult:
    path = Path(output.dest) if output.dest and output.dest != "-" else None
    if _stores(output):
        assert store is not None  # check_outputs
        store_image(store, image, output.names)
    if output.type is OutputType.IMAGE and output.push:
        push_image(pusher, image, output.names)
    elif output.type is OutputType.OCI:
        assert output.dest is not None
        with open_file_dest(output.dest, stdout) as stream:
            write_oci_archive(stream, image, output.names)
    elif output.type is OutputType.DOCKER and output.dest is not None:
        with open_file_dest(output.dest, stdout) as stream:
            archive = write_docker_archive(stream, image, output.names)
        if archive.warning:
            warn(archive.warning)
    elif output.type is OutputType.LOCAL:
        assert output.dest is not None
        export_local(image, output.dest, platform_split=output.platform_split, warn=warn)
    elif output.type is OutputType.TAR:
        assert output.dest is not None
        export_tar(
            image,
            output.dest,
            stdout,
            platform_split=output.platform_split,
            source_date_epoch=source_date_epoch,
            warn=warn,
        )
    return ExportResult(output, image, path)


__all__ = ["ExportResult", "check_outputs", "export"]
