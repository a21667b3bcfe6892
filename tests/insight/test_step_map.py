"""Step names back to Dockerfile lines, checked against the names polybuild's own build gives
(imagebuild/names.py), so the advisor reads what builds write."""

from __future__ import annotations

import pytest

from polybuild.dockerfile import BuildOptions, convert, load
from polybuild.dockerfile import instructions as ins
from polybuild.imagebuild.names import step_names
from polybuild.insight.step_map import StepName, find_run, parse_step_name, runs_per_target
from polybuild.platforms import parse

DOCKERFILE = """\
ARG BASE=alpine
FROM --platform=$BUILDPLATFORM golang AS tools
RUN go build ./tool
FROM $BASE AS build
WORKDIR /src
COPY --from=tools /go/tool /usr/bin/
RUN make $TARGETARCH
COPY . .
RUN make
FROM scratch
COPY --from=build /src/app /app
FROM build
RUN make
RUN make
"""
ONE_STAGE = "FROM alpine\n" + "".join(f"RUN step {n}\n" for n in range(1, 11))


def names(text: str, platforms: tuple[str, ...]) -> list[str]:
    build = parse("linux/amd64")
    graphs = [
        convert(text, BuildOptions(build_platform=build, target_platform=parse(p)), parse(p))
        for p in platforms
    ]
    return list(step_names(graphs, len(platforms) > 1, load(text)).values())


def run_lines(text: str, platforms: tuple[str, ...]) -> dict[str, int]:
    """Each RUN step's name -> the line find_run maps it to."""
    dockerfile, found = load(text), {}
    for name in names(text, platforms):
        parsed = parse_step_name(name)
        assert parsed is not None, name
        run = find_run(dockerfile, parsed)
        if parsed.text.startswith("RUN "):
            assert run is not None, name
            found[name] = run[1].location.start
        else:
            assert run is None, name
    return found


def test_the_names_a_multi_platform_build_gives_map_to_their_lines() -> None:
    lines = run_lines(DOCKERFILE, ("linux/amd64", "linux/arm64"))
    assert lines["[linux/arm64 build 4/6] RUN make $TARGETARCH"] == 7
    assert lines["[linux/arm64 build 6/6] RUN make"] == 9
    assert lines["[linux/arm64 stage-3 1/2] RUN make"] == 13
    assert lines["[linux/arm64 stage-3 2/2] RUN make"] == 14
    assert lines["[linux/amd64 tools 2/2] RUN go build ./tool"] == 3
    emulated_only = run_lines(DOCKERFILE, ("linux/arm64", "linux/riscv64"))
    assert emulated_only["[linux/amd64->arm64 tools 2/2] RUN go build ./tool"] == 3
    assert parse_step_name("[linux/amd64->arm64 tools 2/2] RUN go build ./tool") == StepName(
        "linux/amd64->arm64", "tools", 2, 2, "RUN go build ./tool"
    )


def test_a_one_stage_file_has_no_label_and_padded_numbers() -> None:
    single = run_lines(ONE_STAGE, ("linux/arm64",))
    assert single["[ 2/11] RUN step 1"] == 2
    assert single["[11/11] RUN step 10"] == 11
    multi = run_lines(ONE_STAGE, ("linux/amd64", "linux/arm64"))
    assert multi["[linux/arm64  5/11] RUN step 4"] == 5


@pytest.mark.parametrize(
    "name",
    ["[internal] load build definition from Dockerfile", "exporting to image", "[a 1/x] RUN"],
)
def test_other_vertices_are_no_steps(name: str) -> None:
    assert parse_step_name(name) is None


def test_which_stages_run_per_target() -> None:
    dockerfile = load(DOCKERFILE)
    per_target = {s.display_name: runs_per_target(dockerfile, s) for s in dockerfile.stages}
    assert per_target == {"tools": False, "build": True, "stage-2": True, "stage-3": True}
    inherited = load("FROM --platform=$BUILDPLATFORM a AS x\nFROM x AS y\nRUN y\n")
    assert not runs_per_target(inherited, inherited.stages[1])


def test_a_number_naming_no_run_falls_back_to_the_text() -> None:
    dockerfile = load(DOCKERFILE)
    step = parse_step_name("[linux/arm64 build 5/6] RUN make")  # 5/6 is the COPY
    assert step is not None
    found = find_run(dockerfile, step)
    assert found is not None and isinstance(found[1], ins.Run)
    assert (found[0].display_name, found[1].location.start) == ("build", 9)
    ambiguous = parse_step_name("[linux/arm64 stage-3 7/9] RUN make")  # two RUN make there
    assert ambiguous is not None and find_run(dockerfile, ambiguous) is None
