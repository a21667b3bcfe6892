"""Build progress: the event model, BuildKit-style renderers (tty, plain, rawjson, quiet), and
the emulation report.

>>> import io
>>> from polybuild.progress import ProgressWriter, make_renderer
>>> out = io.StringIO()
>>> writer = ProgressWriter(make_renderer("plain", out), clock=lambda: 0.0)
>>> with writer.vertex("sha256:aa", "[linux/arm64 build 1/2] RUN true"):
...     pass
>>> writer.close()
>>> print(out.getvalue(), end="")
#1 [linux/arm64 build 1/2] RUN true
#1 DONE 0.0s
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TextIO

from polybuild.errors import UsageError
from polybuild.progress.events import (
    STDERR,
    STDOUT,
    BuildWarning,
    Event,
    Progress,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)
from polybuild.progress.plain import PlainRenderer
from polybuild.progress.rawjson import RawJSONRenderer
from polybuild.progress.report import (
    SLOW_SECONDS,
    EmulatedStep,
    EmulationReport,
    emulation_report,
)
from polybuild.progress.writer import Fanout, NullProgress, ProgressWriter, Recorder, VertexHandle

MODES = ("auto", "tty", "plain", "rawjson", "quiet")
ENV_VAR = "BUILDKIT_PROGRESS"


def resolve_mode(mode: str | None, env: Mapping[str, str] | None = None) -> str:
    """The progress mode: the flag, else $BUILDKIT_PROGRESS, else auto; UsageError if unknown."""
    environ = os.environ if env is None else env
    chosen = mode or environ.get(ENV_VAR) or "auto"
    if chosen not in MODES:
        source = "--progress" if mode else ENV_VAR
        raise UsageError(
            f'{source}: unknown progress mode "{chosen}"', hint=f"modes: {', '.join(MODES)}"
        )
    return chosen


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def make_renderer(
    mode: str | None,
    stream: TextIO,
    *,
    env: Mapping[str, str] | None = None,
    instance: tuple[str, str] | None = None,
    nodes: Sequence[tuple[str, str]] = (),
) -> Progress:
    """The sink for `--progress=MODE` writing to `stream` (usually stderr).

    `auto` and `tty` draw the interactive display on a terminal and fall back to plain
    output when `stream` is not one; `quiet` shows nothing (the CLI still reports errors).
    `instance` (builder name, driver) is the build's description as buildx gives it: plain
    output's `#0 building with "NAME" instance using DRIVER driver`, the tty's `DRIVER:NAME`.
    `nodes` are the builder's (vertex prefix, label): the tty names the node of each step
    when there are several.
    """
    chosen = resolve_mode(mode, env)
    if chosen == "quiet":
        return NullProgress()
    if chosen == "rawjson":
        return RawJSONRenderer(stream)
    if chosen in ("auto", "tty") and _isatty(stream):
        from polybuild.progress.tty import TTYRenderer  # only when drawn

        console_desc = f"{instance[1]}:{instance[0]}" if instance else ""
        return TTYRenderer(stream, desc=console_desc, nodes=nodes)
    desc = f'building with "{instance[0]}" instance using {instance[1]} driver' if instance else ""
    return PlainRenderer(stream, desc=desc)


__all__ = [
    "ENV_VAR",
    "MODES",
    "SLOW_SECONDS",
    "STDERR",
    "STDOUT",
    "BuildWarning",
    "EmulatedStep",
    "EmulationReport",
    "Event",
    "Fanout",
    "NullProgress",
    "PlainRenderer",
    "Progress",
    "ProgressWriter",
    "RawJSONRenderer",
    "Recorder",
    "VertexCompleted",
    "VertexHandle",
    "VertexLog",
    "VertexStarted",
    "VertexStatus",
    "emulation_report",
    "make_renderer",
    "resolve_mode",
]
