"""`-o type=oci`: the image, every platform, as an OCI image layout tarball (file or stdout)."""

from __future__ import annotations

import asyncio

from polybuild.exporters.archive import write_oci_archive
from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.base import ExportContext, check_file_output
from polybuild.exporters.destination import open_file_dest
from polybuild.exporters.spec import OutputSpec


class OciExporter:
    check = staticmethod(check_file_output)

    async def export(
        self, output: OutputSpec, image: AssembledImage, context: ExportContext
    ) -> str | None:
        assert output.dest is not None  # spec: stdout by default

        def write() -> None:
            assert output.dest is not None
            with open_file_dest(output.dest, context.stdout) as stream:
                write_oci_archive(stream, image, output.names)

        await asyncio.to_thread(write)
        return None
