"""Each output of a build as BuildKit's exporter step: `exporting to image` with its
`exporting layers`, `exporting manifest sha256:...`, `exporting config sha256:...`,
`exporting manifest list sha256:...`, `naming to NAME`, `pushing layers` and `pushing
manifest for NAME@sha256:...` lines (the oci/docker archives' `sending tarball`, the local
and tar outputs' `copying files`), reported once the output is written."""

from __future__ import annotations

from collections.abc import Sequence

from polybuild.exporters import ExportResult, export_outputs
from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.base import ExportContext
from polybuild.exporters.spec import OutputSpec, OutputType
from polybuild.image import mediatypes as mt
from polybuild.image.platform_image import ExportSource
from polybuild.progress.writer import ProgressWriter, VertexHandle

TITLES = {
    OutputType.IMAGE: "exporting to image",
    OutputType.OCI: "exporting to oci image format",
    OutputType.DOCKER: "exporting to docker image format",
    OutputType.LOCAL: "exporting to client directory",
    OutputType.TAR: "exporting to client tarball",
}


async def export_reported(
    source: ExportSource,
    outputs: Sequence[OutputSpec],
    context: ExportContext,
    progress: ProgressWriter,
) -> list[ExportResult]:
    """`export_outputs`, one output at a time, each as its exporter step."""
    results: list[ExportResult] = []
    for number, output in enumerate(outputs):
        title = TITLES.get(output.type, f"exporting to {output.type}")
        with progress.vertex(f"export:{number}", title) as step:
            started = progress.clock()
            written = await export_outputs(source, [output], context)
            _report(step, output, written[0].image, started, progress.clock())
        results += written
    return results


def _report(
    step: VertexHandle, output: OutputSpec, image: AssembledImage, started: float, ended: float
) -> None:
    def done(text: str, since: float = ended) -> None:
        step.status(text, 0, started=since, completed=ended)

    if output.type in (OutputType.LOCAL, OutputType.TAR):
        done("copying files", started)
        return
    done("exporting layers", started)
    attestations: dict[str, list[str]] = {}
    for entry in image.index.value.manifests if image.index is not None else ():
        if entry.annotations.get(mt.ANNOTATION_DOCKER_REFERENCE_TYPE) == mt.ATTESTATION_MANIFEST:
            subject = entry.annotations.get(mt.ANNOTATION_DOCKER_REFERENCE_DIGEST, "")
            attestations.setdefault(subject, []).append(str(entry.digest))
    for platform in image.platforms:
        done(f"exporting manifest {platform.manifest.digest}")
        done(f"exporting config {platform.config.digest}")
        for attestation in attestations.get(str(platform.manifest.digest), ()):
            done(f"exporting attestation manifest {attestation}")
    if image.index is not None:
        done(f"exporting manifest list {image.digest}")
    if output.type is not OutputType.IMAGE:
        done("sending tarball", started)
        return
    for name in output.names:
        done(f"naming to {name}")
    if output.push:
        done("pushing layers", started)
        for name in output.names:
            done(f"pushing manifest for {name}@{image.digest}")


__all__ = ["TITLES", "export_reported"]
