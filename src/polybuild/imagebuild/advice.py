"""The emulation advisor after a build (issue 17): which emulated RUN steps to cross-compile,
from the build's own events and its Dockerfile, for the report after the progress and for
`--metadata-file`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import overload

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


class _Earlier(Sequence[BuildRecord]):
    """The data root's build records, newest first, read only if the advisor looks at them
    (a step with no native twin in this build)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @cached_property
    def _records(self) -> list[BuildRecord]:
        from polybuild.history import HistoryStore

        return HistoryStore(self._root, warn=lambda _: None).records()

    @overload
    def __getitem__(self, index: int) -> BuildRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[BuildRecord]: ...
    def __getitem__(self, index: int | slice) -> BuildRecord | Sequence[BuildRecord]:
        return self._records[index]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[BuildRecord]:
        return iter(self._records)


def build_advice(
    request: BuildRequest,
    planned: Sequence[Planned],
    events: Sequence[Event],
    root: Path,
    dockerfile: str,
) -> tuple[Advice, ...]:
    """Advice for this build's emulated steps, with native times from a twin in this build,
    else in an earlier build of the data root's history, else estimated from QEMU's factors
    that `binfmt --bench` measured. `dockerfile` is the text the build read (none: no
    advice, as when nothing ran emulated)."""
    if not dockerfile or not any(isinstance(e, VertexStarted) and e.emulated for e in events):
        return ()
    given = request.dockerfile if request.dockerfile_text is None else None
    name = given.name if given is not None else "Dockerfile"
    nodes = tuple(
        NodeRecord(p.driver.label, tuple(format_platform(x) for x in p.platforms),
                   p.driver.vertex_prefix)
        for p in planned
    )  # fmt: skip
    steps, _ = capture_steps(events, nodes)
    record = BuildRecord(
        ref="", name="", builder="", started=0.0, completed=0.0, status="completed", steps=steps
    )
    from polybuild.insight.factors import load_factors

    try:
        return advise(
            record, dockerfile, filename=name, history=_Earlier(root), factors=load_factors(root)
        )
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
