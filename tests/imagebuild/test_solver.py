"""The solver on real containers: sharing across platforms, caching, parallel failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from polybuild.errors import ExecutionError, StepFailedError
from polybuild.image.platform_image import PlatformImage
from polybuild.imagebuild.pipeline import convert_all, solve
from polybuild.imagebuild.request import make_request
from polybuild.platforms import parse_list
from polybuild.progress.events import Event, VertexCompleted, VertexStarted
from polybuild.progress.writer import ProgressWriter, Recorder
from polybuild.runtime import Runtime
from polybuild.solver.scheduler import Solver
from tests.conftest import import_busybox, require_platforms, require_root, require_tool

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

THREE = "linux/amd64,linux/arm64,linux/arm/v7"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    require_root()
    require_tool("runc")
    require_platforms(*THREE.split(","))
    root = tmp_path_factory.mktemp("solver") / "root"
    import_busybox(root)
    return Runtime(root)


def build(
    runtime: Runtime, context: Path, dockerfile: str, **kw: object
) -> tuple[list[PlatformImage], Solver, Recorder]:
    (context / "Dockerfile").write_text(dockerfile)
    request = make_request(context, platforms=THREE.split(","), **kw)  # type: ignore[arg-type]
    recorder = Recorder()

    async def run() -> tuple[list[PlatformImage], Solver]:
        converted = await convert_all(request, runtime, None)
        return await solve(request, runtime, converted, ProgressWriter(recorder), None)  # type: ignore[arg-type]

    images, solver = asyncio.run(run())
    return images, solver, recorder


def solver_events(recorder: Recorder) -> list[Event]:
    """The solver's own steps' events: not the FROM and [internal] steps around them."""
    around = {
        e.vertex
        for e in recorder.events
        if isinstance(e, VertexStarted) and (" FROM " in e.name or e.name.startswith("[internal]"))
    }
    return [e for e in recorder.events if getattr(e, "vertex", None) not in around]


SHARED = """\
FROM --platform=$BUILDPLATFORM busybox AS build
RUN echo "shared $(date +%s%N)" > /shared
FROM busybox
RUN uname -m > /arch
"""


def test_build_platform_stage_runs_once_for_three_targets(runtime: Runtime, tmp_path: Path) -> None:
    images, solver, recorder = build(runtime, tmp_path, SHARED, target="build")
    assert len(solver.executed) == 1  # type: ignore[attr-defined]
    # One image per target, all with the same single RUN layer on top of the amd64 base.
    top = {img.config.value.diff_ids[-1] for img in images}
    assert len(top) == 1
    started = [e for e in solver_events(recorder) if isinstance(e, VertexStarted)]
    assert [e.emulated for e in started] == [False]  # ran natively, not under emulation


def test_target_steps_run_per_platform_under_emulation(runtime: Runtime, tmp_path: Path) -> None:
    images, solver, recorder = build(runtime, tmp_path, SHARED)
    assert len(solver.executed) == 3  # type: ignore[attr-defined]
    assert [img.platform for img in images] == list(parse_list(THREE))
    ran = [e for e in solver_events(recorder) if isinstance(e, VertexStarted)]
    ran = [
        e
        for e in ran
        if not any(
            isinstance(c, VertexCompleted) and c.vertex == e.vertex and c.cached
            for c in recorder.events
        )
    ]
    assert sorted(e.emulated for e in ran) == [False, True, True]
    names = sorted(e.name for e in ran)
    assert names[0].startswith("[linux/amd64 stage-1 2/2] RUN uname -m")


def test_rebuild_runs_no_container(runtime: Runtime, tmp_path: Path) -> None:
    first, _, _ = build(runtime, tmp_path, SHARED + "RUN echo again > /again\n")
    second, solver, recorder = build(runtime, tmp_path, SHARED + "RUN echo again > /again\n")
    assert solver.executed == []  # type: ignore[attr-defined]
    completed = [e for e in solver_events(recorder) if isinstance(e, VertexCompleted)]
    assert completed and all(e.cached for e in completed)
    assert [i.config.value.diff_ids for i in first] == [i.config.value.diff_ids for i in second]
    _, solver, _ = build(runtime, tmp_path, SHARED + "RUN echo again > /again\n", no_cache=True)
    assert len(solver.executed) == 6  # type: ignore[attr-defined]


def test_first_failure_names_step_platform_and_output(runtime: Runtime, tmp_path: Path) -> None:
    dockerfile = "FROM busybox\nRUN echo line-one; echo oops-$(uname -m) >&2; exit 3\n"
    with pytest.raises(ExecutionError) as info:
        build(runtime, tmp_path, dockerfile)
    # BuildKit's message; the step's output went to its progress (the renderer's block)
    assert str(info.value) == (
        'process "/bin/sh -c echo line-one; echo oops-$(uname -m) >&2; exit 3" '
        "did not complete successfully: exit code: 3"
    )
    assert isinstance(info.value, StepFailedError)
    assert info.value.step.endswith(" 2/2] RUN echo line-one; echo oops-$(uname -m) >&2; exit 3")
    assert info.value.lines == (2, 2)
    assert info.value.excerpt.startswith("Dockerfile:2\n--------------------\n")
    assert "   2 | >>> RUN echo line-one;" in info.value.excerpt
    # Nothing is left running or mounted.
    assert list((runtime.root / "snapshots" / "active").iterdir()) == []
    assert list((runtime.root / "containers" / "bundles").iterdir()) == []
