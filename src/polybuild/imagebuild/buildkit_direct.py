"""A build on one BuildKit node whose outputs the daemon writes itself (buildkit_outputs'
`daemon_outputs`), as buildx's remote driver has it: each file it sends goes straight into a
temp file beside its destination, renamed into place only when the whole build succeeded
(`-` streams to stdout), and `--metadata-file` / `--iidfile` come from its exporters'
response. Nothing passes through this machine's store."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from polybuild.buildkit.solve import Export, Outputs
from polybuild.errors import RemoteError
from polybuild.exporters.destination import open_file_dest
from polybuild.exporters.metadata import write_metadata_file
from polybuild.image.content import write_file_atomic
from polybuild.image.descriptor import Descriptor
from polybuild.imagebuild.buildkit_driver import BuildKitDriver
from polybuild.imagebuild.buildkit_outputs import DaemonOutput
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform
from polybuild.progress.writer import ProgressWriter

DIGEST = "containerimage.digest"
CONFIG_DIGEST = "containerimage.config.digest"
DESCRIPTOR = "containerimage.descriptor"  # base64 of the image's JSON descriptor
NAME = "image.name"
_MAX_DESCRIPTOR = 64 << 10


async def build_direct(
    driver: BuildKitDriver,
    request: BuildRequest,
    platforms: tuple[Platform, ...],
    progress: ProgressWriter,
    outputs: Sequence[DaemonOutput],
    stdout: BinaryIO,
) -> dict[str, str]:
    """Build on `driver`'s daemon, which writes `outputs`; its exporters' response."""
    with contextlib.ExitStack() as stack:
        exports: list[Export] = []
        files: list[tuple[DaemonOutput, BinaryIO]] = []
        for output in outputs:
            sink = None
            if output.dest is not None:
                sink = stack.enter_context(open_file_dest(output.dest, stdout))
                if output.dest != "-":
                    files.append((output, sink))
            exports.append(Export(output.type, output.attrs, sink))
        response = await driver.solve(request, platforms, progress, Outputs(direct=tuple(exports)))
        for output, sink in files:
            if sink.tell() == 0:  # a tarball is never empty: the daemon did not send it
                raise RemoteError(
                    f"node {driver.label}: the daemon sent nothing for -o type={output.type},"
                    f"dest={output.dest}"
                )
    return response


def metadata(response: Mapping[str, str]) -> dict[str, object]:
    """`--metadata-file` as buildx writes it from the exporters' response: the image digest,
    its descriptor (decoded), the config digest (one platform) and the names."""
    result: dict[str, object] = {}
    for key in (DIGEST, CONFIG_DIGEST, NAME):
        if response.get(key):
            result[key] = response[key]
    if response.get(DESCRIPTOR):
        result[DESCRIPTOR] = json.loads(_descriptor_bytes(response[DESCRIPTOR]))
    return dict(sorted(result.items()))


def image_descriptor(response: Mapping[str, str]) -> Descriptor | None:
    """The exported image's descriptor (None when no exporter made an image)."""
    encoded = response.get(DESCRIPTOR)
    return Descriptor.from_json(_descriptor_bytes(encoded)) if encoded else None


def _descriptor_bytes(encoded: str) -> bytes:
    try:
        if len(encoded) > _MAX_DESCRIPTOR:
            raise ValueError("too long")
        data = base64.b64decode(encoded, validate=True)
        json.loads(data)
    except (ValueError, binascii.Error) as exc:
        raise RemoteError(f"the BuildKit daemon's image descriptor is not JSON ({exc})") from None
    return data


def write_result_files(request: BuildRequest, response: Mapping[str, str]) -> None:
    """`--iidfile` (the config digest for one platform, else the image digest, as buildx)
    and `--metadata-file`, from the exporters' response."""
    image_id = response.get(CONFIG_DIGEST) or response.get(DIGEST)
    if request.iidfile and image_id:
        write_file_atomic(request.iidfile, image_id.encode(), 0o644)
    if request.metadata_file:
        write_metadata_file(request.metadata_file, metadata(response))


__all__ = ["build_direct", "image_descriptor", "metadata", "write_result_files"]
