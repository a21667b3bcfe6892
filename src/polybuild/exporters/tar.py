"""`-o type=tar`: each platform's final filesystem as one tar stream (file or stdout)."""

from __future__ import annotations

import asyncio

from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.base import ExportContext, check_file_output
from polybuild.exporters.filesystem import export_tar
from polybuild.exporters.spec import OutputSpec


class TarExporter:
    check = staticmethod(check_file_output)

    async def export(
        self, output: OutputSpec, image: AssembledImage, context: ExportContext
    ) -> str | None:
        assert output.dest is not None  # spec: stdout by default
        await asyncio.to_thread(
            export_tar,
            image,
            output.dest,
            context.stdout,
            platform_split=output.platform_split,
            source_date_epoch=context.source_date_epoch,
            warn=context.warn,
        )
        return None
