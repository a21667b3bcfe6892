"""The emulation advisor after a build (issue 17): which emulated RUN steps to cross-compile,
from the build's own events and its Dockerfile, for the report after the progress and for
`--metadata-file`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from polybuild.errors import PolybuildError
from polybuild.history.capture import capture_steps
from polybuild.history.record import BuildRecord, NodeRecord
from polybuild.imagebuild.driver import Planned
from polybuild.imagebuild.request import BuildRequest
from polybuild.insight import Advice, advise
from polybuild.platforms import format_platform
from polybuild.progress.events import Event, VertexStarted
from polybuild.progress.sanitize import clean

METADATA_KEY = "polybuild.emulation.advice"


def build_advice(
    request: BuildRequest, planned: Sequence[Planned], events: Sequence[Event], root: Path
) -> tuple[Advice, ...]:
    """Advice for this build's emulated steps, with native times from a twin in this build,
    else in an earlier build of the data root's history, else estimated from QEMU's factors
    that `binfmt --bench` measured (none when nothing ran emulated, or the Dockerfile cannot
    be read again)."""
    if not any(isinstance(e, VertexStarted) and e.emulated for e in events):
        return ()
    from polybuild.imagebuild.dockerfile_file import read_dockerfile

    try:
        data, name, _ = read_dockerfile(request)
    except (PolybuildError, OSError):
        return ()
    nodes = tuple(
        NodeRecord(p.driver.label, tuple(format_platform(x) for x in p.platforms),
                   p.driver.vertex_prefix)
        for p in planned
    )  # fmt: skip
    steps, _ = capture_steps(events, nodes)
    record = BuildRecord(
        ref="", name="", builder="", started=0.0, completed=0.0, status="completed", steps=steps
    )
    from polybuild.history import HistoryStore
    from polybuild.insight.factors import load_factors

    history = HistoryStore(root, warn=lambda _: None).records()
    try:
        return advise(record, data, filename=name, history=history, factors=load_factors(root))
    except PolybuildError:  # a Dockerfile the build read differently (stdin, a URL context)
        return ()


def render_advice(advice: Sequence[Advice]) -> str:
    """The report after the build: one line per step worth moving, most time saved first."""
    if not advice:
        return ""
    lines = ["Cross-compile to save time (emulated steps, native times of the same steps):"]
    # a message quotes the Dockerfile (hostile): no escape sequence reaches the terminal
    lines += [f"  {clean(a.message)}" for a in advice]
    return "\n".join(lines) + "\n"


__all__ = ["METADATA_KEY", "build_advice", "render_advice"]
