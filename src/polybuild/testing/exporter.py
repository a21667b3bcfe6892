"""An exporter for tests: records what it was asked to write, writes nothing."""

from __future__ import annotations

from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.base import ExportContext
from polybuild.exporters.spec import OutputSpec


class RecordingExporter:
    """Checks nothing unless `refuse` is set; `exported` lists (output, image) in order."""

    def __init__(self, *, refuse: Exception | None = None, warning: str | None = None) -> None:
        self.refuse = refuse
        self.warning = warning
        self.checked: list[OutputSpec] = []
        self.exported: list[tuple[OutputSpec, AssembledImage]] = []

    def check(self, output: OutputSpec, context: ExportContext) -> None:
        self.checked.append(output)
        if self.refuse is not None:
            raise self.refuse

    async def export(
        self, output: OutputSpec, image: AssembledImage, context: ExportContext
    ) -> str | None:
        self.exported.append((output, image))
        return self.warning


__all__ = ["RecordingExporter"]
