"""What a build prints after its progress: the steps that ran under emulation, and which
node built which platform."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from polybuild.imagebuild.driver import Planned
from polybuild.imagebuild.node_report import node_report
from polybuild.imagebuild.request import BuildRequest
from polybuild.progress import emulation_report
from polybuild.progress.events import Event


def write_reports(
    err: TextIO, request: BuildRequest, planned: Sequence[Planned], events: Sequence[Event]
) -> None:
    """Both reports on `err` from the build's recorded events (none with --progress=quiet)."""
    if request.progress == "quiet":
        return
    report = emulation_report(events)
    if report.steps:
        text = report.render()
        err.write(text if text.endswith("\n") else text + "\n")
    nodes = node_report(list(planned), events)
    if nodes:
        err.write(nodes + "\n")


__all__ = ["write_reports"]
