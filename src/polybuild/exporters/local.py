"""`-o type=local,dest=DIR`: each platform's final filesystem in a directory."""

from __future__ import annotations

import asyncio

from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.base import ExportContext
from polybuild.exporters.destination import check_dir_dest
from polybuild.exporters.filesystem import export_local
from polybuild.exporters.spec import OutputSpec


class LocalExporter:
    def check(self, output: OutputSpec, context: ExportContext) -> None:
        if output.dest:
            check_dir_dest(output.dest)

    async def export(
        self, output: OutputSpec, image: AssembledImage, context: ExportContext
    ) -> str | None:
        assert output.dest is not None  # spec: required for type=local
        await asyncio.to_thread(
            export_local,
            image,
            output.dest,
            platform_split=output.platform_split,
            warn=context.warn,
        )
        return None
