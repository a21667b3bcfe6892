"""The exporter seam: one `Exporter` per output type, and what every exporter is given.

An exporter checks its output before the build starts (so a bad `-o` fails in a second,
not after an hour of emulated steps) and writes the assembled image when the build is
done. The build never branches on the output type: it looks the exporter up by name in
`polybuild.exporters.export.EXPORTERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.destination import check_file_dest
from polybuild.exporters.spec import OutputSpec
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.reference import Reference
from polybuild.image.store import ImageStore

Warn = Callable[[str], None]


class Pusher(Protocol):
    """Pushes an image whose blobs are in `content` under every ref: a function or coroutine
    function such as `polybuild.registry.push` (the image is already in its final media
    types, so `docker_media_types` only confirms them)."""

    def __call__(
        self,
        content: ContentStore,
        target: Descriptor,
        refs: Sequence[Reference],
        /,
        *,
        docker_media_types: bool,
    ) -> object: ...


@dataclass(frozen=True, slots=True)
class ExportContext:
    """Where outputs may go: the local image store, a pusher, stdout, and how to warn."""

    stdout: BinaryIO
    warn: Warn
    store: ImageStore | None = None
    pusher: Pusher | None = None
    source_date_epoch: int | None = None


def check_file_output(output: OutputSpec, context: ExportContext) -> None:
    """`check` of the outputs written to one file or stdout (oci, tar, docker with dest)."""
    if output.dest:
        check_file_dest(output.dest, context.stdout)


class Exporter(Protocol):
    """Writes one kind of output (`-o type=NAME`)."""

    def check(self, output: OutputSpec, context: ExportContext) -> None:
        """UsageError, before building, for an output that cannot work."""

    async def export(
        self, output: OutputSpec, image: AssembledImage, context: ExportContext
    ) -> str | None:
        """Write `image`; returns a warning to show, if any."""


__all__ = ["ExportContext", "Exporter", "Pusher", "Warn", "check_file_output"]
