"""Step names as BuildKit gives them (dockerfile2llb's prefixCommand), from real conversions:
counters, stage names, padding, platforms, flags kept and COPY's words expanded."""

from __future__ import annotations

from polybuild.dockerfile import BuildOptions, convert, load
from polybuild.graph import ops
from polybuild.imagebuild.names import multi_platform_requested, step_names
from polybuild.platforms import Platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


def names_of(
    text: str, *platforms: Platform, build_args: dict[str, str] | None = None
) -> list[str]:
    """Every named step, in the order of the graph (inputs first), each once."""
    dockerfile = load(text)
    graphs = [
        convert(dockerfile, BuildOptions(build_args=build_args or {}, target_platform=p), p)
        for p in platforms or (AMD64,)
    ]
    names = step_names(graphs, len(graphs) > 1, dockerfile)
    seen: list[str] = []
    for graph in graphs:
        for op in graph.ops():
            if op.digest in names and names[op.digest] not in seen:
                seen.append(names[op.digest])
    return seen


def test_a_one_stage_file_has_no_stage_name_and_counts_from() -> None:
    assert names_of("FROM busybox\nENV A=1\nRUN true\nCOPY a /a\n") == [
        "[1/3] FROM docker.io/library/busybox:latest",
        "[2/3] RUN true",
        "[3/3] COPY a /a",
    ]


def test_stages_scratch_and_stage_bases_are_not_counted() -> None:
    text = (
        "FROM busybox AS base\nARG X=hi\nRUN echo one\nWORKDIR /app\nCOPY . /src/$X\n"
        "FROM base\nRUN --network=none sh -c 'exit 3'\n"
        "FROM scratch AS out\nCOPY --from=base /src /src\n"
    )
    assert names_of(text) == [
        "[base 1/4] FROM docker.io/library/busybox:latest",
        "[base 2/4] RUN echo one",
        "[base 3/4] WORKDIR /app",
        "[base 4/4] COPY . /src/hi",
        "[out 1/1] COPY --from=base /src /src",
    ]
    # the middle stage is not the target's input: its name when it is built
    middle = names_of(text.rsplit("FROM scratch", 1)[0])
    assert middle[-1] == "[stage-1 1/1] RUN --network=none sh -c 'exit 3'"


def test_counters_are_padded_to_the_totals_width() -> None:
    text = "FROM busybox\n" + "".join(f"RUN echo {n}\n" for n in range(10))
    names = names_of(text)
    assert names[0] == "[ 1/11] FROM docker.io/library/busybox:latest"
    assert names[1] == "[ 2/11] RUN echo 0"
    assert names[-1] == "[11/11] RUN echo 9"


def test_flags_are_kept_and_copy_words_expanded() -> None:
    text = (
        "FROM busybox\nARG DEST=/opt\n"
        "RUN --mount=type=cache,target=/root/.cache --network=none make\n"
        "COPY --chmod=755 --link bin/ $DEST/\n"
    )
    # a RUN --mount makes a one-stage file's steps `stage-0`'s (next test)
    assert names_of(text, build_args={"DEST": "/srv"})[1:] == [
        "[stage-0 2/3] RUN --mount=type=cache,target=/root/.cache --network=none make",
        "[stage-0 3/3] COPY --chmod=755 --link bin/ /srv/",
    ]


def test_a_one_stage_file_is_stage_0_when_a_source_is_no_stage() -> None:
    # dockerfile2llb adds a state for every RUN --mount (any type) and every COPY --from of
    # an image before it drops a lone stage's name, as a BuildKit daemon shows a one-stage
    # build with a secret mount (tests/buildkit/test_build_on_daemon.py)
    for line in ("RUN --mount=type=secret,id=s true", "COPY --from=alpine /etc/os-release /"):
        assert names_of(f"FROM busybox\n{line}\n")[1] == f"[stage-0 2/2] {line}"
    for line in ("RUN --network=none true", "ADD a /a"):
        assert names_of(f"FROM busybox\n{line}\n")[1] == f"[2/2] {line}"


def test_multi_platform_names_lead_with_the_platform() -> None:
    text = (
        "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETPLATFORM\n"
        'RUN make TARGET=$TARGETPLATFORM "$UNSET"\n'
        "FROM busybox\nCOPY --from=build /app /app\n"
    )
    names = names_of(text, AMD64, ARM64)
    # one op (busybox for amd64) for two stages: one step, named by the first, as BuildKit
    assert "[linux/amd64 build 1/2] FROM docker.io/library/busybox:latest" in names
    assert "[linux/arm64 stage-1 1/2] FROM docker.io/library/busybox:latest" in names
    # built on amd64 for arm64: BuildKit's cross-compilation form
    assert '[linux/amd64->arm64 build 2/2] RUN make TARGET=linux/arm64 "$UNSET"' in names
    assert '[linux/amd64 build 2/2] RUN make TARGET=linux/amd64 "$UNSET"' in names
    assert "[linux/arm64 stage-1 2/2] COPY --from=build /app /app" in names


def test_one_platform_is_named_with_it_when_multi_platform_is_requested() -> None:
    # dockerui's MultiPlatformRequested: several platforms, or BUILDKIT_MULTI_PLATFORM (Go's
    # ParseBool), which buildx's multiDriver also means: a node's share of a build
    assert not multi_platform_requested((AMD64,), {})
    assert multi_platform_requested((AMD64, ARM64), {})
    for true in ("1", "t", "T", "TRUE", "true", "True"):
        assert multi_platform_requested((ARM64,), {"BUILDKIT_MULTI_PLATFORM": true})
    for other in ("0", "false", "", "yes", "tRUE"):
        assert not multi_platform_requested((ARM64,), {"BUILDKIT_MULTI_PLATFORM": other})
    text = "FROM busybox\nRUN true\n"
    graph = convert(load(text), BuildOptions(target_platform=ARM64), ARM64)
    names = set(step_names([graph], True, load(text)).values())
    assert names == {
        "[linux/arm64 1/2] FROM docker.io/library/busybox:latest",
        "[linux/arm64 2/2] RUN true",
    }


def test_ops_carry_their_instructions_lines() -> None:
    graph = convert(load("FROM busybox\n\nRUN a \\\n  b\nWORKDIR /x\n"))
    found = {type(op).__name__: op.location for op in graph.ops() if hasattr(op, "location")}
    assert found == {"Exec": (3, 4), "Mkdir": (5, 5)}
    assert not any(isinstance(op, ops.Merge) for op in graph.ops())
