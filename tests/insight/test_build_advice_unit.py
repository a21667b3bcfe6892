"""build_advice on a build's own events: the Dockerfile text the build read, and the history
read only when a step has no native twin in the build."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from polybuild.history.store import HistoryStore
from polybuild.imagebuild.advice import build_advice
from polybuild.imagebuild.request import make_request
from polybuild.platforms import parse
from polybuild.progress.events import Event, VertexCompleted, VertexStarted

DOCKERFILE = "FROM busybox\nRUN make\n"
AMD, ARM = parse("linux/amd64"), parse("linux/arm64")


def _events(*, twin: bool) -> list[Event]:
    events: list[Event] = [
        VertexStarted("a", "[linux/arm64 2/2] RUN make", 0.0, ARM, True),
        VertexCompleted("a", 8.0),
    ]
    if twin:
        events += [
            VertexStarted("b", "[linux/amd64 2/2] RUN make", 0.0, AMD),
            VertexCompleted("b", 1.0),
        ]
    return events


def _planned() -> list[Any]:
    driver = SimpleNamespace(label="this machine", vertex_prefix="")
    return [SimpleNamespace(driver=driver, platforms=(AMD, ARM))]


def test_a_twin_in_the_build_needs_no_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(self: HistoryStore) -> list[object]:
        raise AssertionError("the history was read")

    monkeypatch.setattr(HistoryStore, "records", unreadable)
    request = make_request(tmp_path, platforms=["linux/amd64", "linux/arm64"])
    (advice,) = build_advice(request, _planned(), _events(twin=True), tmp_path, DOCKERFILE)
    assert (advice.basis, advice.line) == ("twin", 2)
    assert advice.ratio == pytest.approx(8.0)
    # without a twin the history is where the advisor looks next
    with pytest.raises(AssertionError, match="the history was read"):
        build_advice(request, _planned(), _events(twin=False), tmp_path, DOCKERFILE)


def test_no_dockerfile_text_no_advice(tmp_path: Path) -> None:
    request = make_request(tmp_path, platforms=["linux/amd64", "linux/arm64"])
    assert build_advice(request, _planned(), _events(twin=True), tmp_path, "") == ()
