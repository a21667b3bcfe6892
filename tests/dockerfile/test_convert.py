"""Conversion to a build graph: platform args, ARG scoping, stage graph, image config, errors."""

from __future__ import annotations

import pytest

from polybuild.dockerfile import BuildOptions, convert, graph_dump, normalize_reference
from polybuild.errors import DockerfileError
from polybuild.graph import Copy, Exec, ImageSource, Merge, Mkdir
from polybuild.platforms import parse

AMD64, ARM64, ARMV7 = parse("linux/amd64"), parse("linux/arm64"), parse("linux/arm/v7")
OPTS = BuildOptions(build_platform=AMD64)

SEED = """\
# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM golang:alpine AS build
RUN echo "I am running on $BUILDPLATFORM, building for $TARGETPLATFORM" > /log
FROM alpine
COPY --from=build /log /log
"""


def test_seed_build_stage_shared_across_targets_final_stage_not() -> None:
    graphs = [convert(SEED, OPTS, p) for p in (AMD64, ARM64, ARMV7)]
    build = {g.stages[0].root.digest for g in graphs if g.stages[0].root}
    final = {g.target.root.digest for g in graphs if g.target.root}
    assert len(build) == 1
    assert len(final) == 3
    assert all(g.stages[0].platform == AMD64 for g in graphs)
    assert [g.target.platform for g in graphs] == [AMD64, ARM64, ARMV7]
    assert not graphs[0].warnings


def test_build_stage_reading_target_args_differs_per_target() -> None:
    text = SEED.replace("AS build\n", "AS build\nARG TARGETPLATFORM\n")
    digests = {convert(text, OPTS, p).stages[0].root.digest for p in (AMD64, ARM64)}  # type: ignore[union-attr]
    assert len(digests) == 2


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (AMD64, "linux/amd64 linux amd64 -"),
        (ARM64, "linux/arm64 linux arm64 -"),
        (ARMV7, "linux/arm/v7 linux arm v7"),
    ],
)
def test_automatic_platform_args_need_redeclaring(platform: object, expected: str) -> None:
    text = (
        "FROM busybox\n"
        "RUN echo $TARGETPLATFORM\n"
        "ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT\n"
        'ENV X="$TARGETPLATFORM $TARGETOS $TARGETARCH ${TARGETVARIANT:--}"\n'
    )
    graph = convert(text, OPTS, platform)  # type: ignore[arg-type]
    first = graph.ops()[1]
    assert isinstance(first, Exec)
    assert not any(e.startswith("TARGET") for e in first.env)
    assert graph.config.config.env_value("X") == expected


def test_global_args_visible_in_from_not_in_stage_unless_redeclared() -> None:
    text = (
        "ARG BASE=alpine\nARG VERSION=3.19\nARG TAG=${BASE}-${VERSION}\n"
        "FROM $BASE:$VERSION\nENV A=[$VERSION]\nARG VERSION\nENV B=[$VERSION] C=[$TAG]\n"
    )
    graph = convert(text, OPTS, AMD64)
    assert graph.target.base == "docker.io/library/alpine:3.19"
    env = graph.config.config
    assert (env.env_value("A"), env.env_value("B"), env.env_value("C")) == ("[]", "[3.19]", "[]")
    assert ("TAG", "alpine-3.19") in graph.global_args


def test_build_arg_overrides_defaults_and_arg_defaults_use_earlier_values() -> None:
    text = "FROM scratch\nENV P=/opt\nARG A=one\nARG B=$A-$P\nENV R=$B\n"
    assert convert(text, OPTS, AMD64).config.config.env_value("R") == "one-/opt"
    options = BuildOptions(build_args={"A": "two"}, build_platform=AMD64)
    assert convert(text, options, AMD64).config.config.env_value("R") == "two-/opt"


def test_run_env_includes_declared_args_but_config_does_not() -> None:
    graph = convert("FROM alpine\nARG V=1\nRUN true\n", OPTS, AMD64)
    run = graph.target.root
    assert isinstance(run, Exec)
    assert "V=1" in run.env
    assert graph.config.config.env_value("V") is None
    assert graph.config.history[-1].created_by == "RUN |1 V=1 /bin/sh -c true # buildkit"


def test_unneeded_stages_are_not_converted_and_target_selects() -> None:
    text = "FROM alpine AS a\nRUN a\nFROM alpine AS b\nRUN b\nFROM a AS c\nRUN c\n"
    graph = convert(text, OPTS, AMD64)
    assert [s.name for s in graph.stages] == ["a", "c"]
    picked = convert(text, BuildOptions(target="B", build_platform=AMD64), AMD64)
    assert [s.name for s in picked.stages] == ["b"]


def test_copy_from_index_name_and_image() -> None:
    text = (
        "FROM alpine AS one\nRUN x\nFROM alpine\n"
        "COPY --from=0 /a /a\nCOPY --from=one /b /b\nCOPY --from=nginx:1 /c /c\n"
    )
    ops = convert(text, OPTS, ARM64).ops()
    copies = [op for op in ops if isinstance(op, Copy)]
    assert copies[0].source is copies[1].source
    assert isinstance(copies[2].source, ImageSource)
    assert copies[2].source.ref == "docker.io/library/nginx:1"
    assert copies[2].source.platform == ARM64


def test_image_config_walk() -> None:
    text = (
        'FROM alpine\nLABEL a=1 "b c"="d e"\nENV HOME=/root\nWORKDIR app\nWORKDIR $HOME/x\n'
        'USER 1000:1000\nEXPOSE 80 53/udp 8000-8001\nVOLUME /data ["/logs"]\nSTOPSIGNAL SIGINT\n'
        'HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost\nSHELL ["/bin/bash", "-c"]\n'
        'ENTRYPOINT ["/app"]\nCMD serve --port 80\nONBUILD RUN echo child\nMAINTAINER me\n'
    )
    graph = convert(text, BuildOptions(build_platform=AMD64, labels={"x": "y"}), AMD64)
    c = graph.config.config
    assert dict(c.labels) == {"a": "1", "b c": "d e", "x": "y"}
    assert c.working_dir == "/root/x"
    assert c.user == "1000:1000"
    assert c.exposed_ports == ("53/udp", "80/tcp", "8000/tcp", "8001/tcp")
    assert c.stop_signal == "SIGINT"
    assert c.healthcheck is not None and c.healthcheck.test == ("CMD-SHELL", "wget -q localhost")
    assert (c.healthcheck.interval, c.healthcheck.retries) == (5_000_000_000, 3)
    assert c.shell == ("/bin/bash", "-c")
    assert c.entrypoint == ("/app",)
    assert c.cmd == ("/bin/bash", "-c", "serve --port 80")
    assert c.on_build == ("RUN echo child",)
    assert graph.config.author == "me"
    assert graph.config.platform == AMD64
    assert [isinstance(op, Mkdir) for op in graph.ops()].count(True) == 2


def test_onbuild_triggers_run_in_child_stage() -> None:
    text = "FROM alpine AS base\nONBUILD RUN echo hi\nFROM base\nRUN next\n"
    graph = convert(text, OPTS, AMD64)
    runs = [op.argv[-1] for op in graph.ops() if isinstance(op, Exec)]
    assert runs == ["echo hi", "next"]
    assert graph.config.config.on_build == ()


def test_run_mounts_and_heredocs() -> None:
    text = (
        "FROM alpine AS src\nFROM alpine\nWORKDIR /w\n"
        "RUN --mount=type=cache,target=/c,sharing=locked --mount=from=src,target=m "
        "--mount=type=secret,id=tok --mount=type=ssh --mount=type=tmpfs,target=/t,size=1m "
        "--network=none --security=insecure make\n"
        "RUN <<EOF\necho one\nEOF\n"
        "RUN <<EOF\n#!/bin/sh\necho two\nEOF\n"
        "COPY --link --chmod=755 <<EOF /etc/x\n$HOSTNAME\nEOF\n"
    )
    ops = convert(text, OPTS, AMD64).ops()
    execs = [op for op in ops if isinstance(op, Exec)]
    mounts = {m.type: m for m in execs[0].mounts}
    assert mounts["cache"].cache_id == "/c" and mounts["cache"].sharing == "locked"
    assert mounts["bind"].target == "/w/m" and mounts["bind"].readonly
    assert mounts["secret"].target == "/run/secrets/tok"
    assert mounts["ssh"].target == "/run/buildkit/ssh_agent.0"
    assert mounts["tmpfs"].size == 1024 * 1024
    assert (execs[0].network, execs[0].security) == ("none", "insecure")
    assert execs[1].argv == ("/bin/sh", "-c", "echo one\n")
    assert execs[2].argv == ("/dev/pipes/EOF",)
    assert isinstance(ops[-1], Merge)


ERRORS = [
    ("FROM a\nRUNN x\n", 2, 'unknown instruction "RUNN" (did you mean RUN?)'),
    ("FROM a\nCOPY --form=x a b\n", 2, "unknown flag --form for COPY"),
    ("FROM a\nRUN --mount=type=cahce,target=/x ls\n", 2, "invalid --mount type=cahce"),
    ("FROM a AS x\nCOPY --from=y a b\nFROM a AS y\nCOPY --from=x a b\n", 2, "circular dependency"),
    ("FROM a AS x\nCOPY --from=y a b\nFROM a AS y\n", 2, "stage needs a stage defined after it"),
    ("FROM a\nCOPY a b c\n", 2, "the destination must be a directory"),
    ("FROM a\nCOPY --from=7 a b\n", 2, "invalid stage index 7"),
    ("FROM --platform=$NOPE a\n", 1, "empty platform value"),
    ("FROM $NOPE\n", 1, "base name ($NOPE) should not be blank"),
    ('FROM a\nENV X="${Y:?must be set}"\n', 2, "Y: must be set"),
    ("FROM a\nSTOPSIGNAL SIGNOPE\n", 2, "Invalid signal: SIGNOPE"),
    ("FROM a\nHEALTHCHECK --interval=5x CMD ls\n", 2, "invalid duration"),
    ("FROM a\nONBUILD FROM b\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
    ("RUN x\nFROM a\n", 1, "no build stage in current context"),
    ("FROM a b\n", 1, "FROM requires either one or three arguments"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS)
def test_errors_carry_line_and_message(text: str, line: int, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        convert(text, OPTS, AMD64)
    assert info.value.line == line
    assert message in info.value.message
    assert str(info.value).startswith(f"Dockerfile:{line}: ")


def test_cycle_error_names_both_lines() -> None:
    with pytest.raises(DockerfileError) as info:
        convert("FROM a AS x\nCOPY --from=y a b\nFROM a AS y\nCOPY --from=x a b\n", OPTS, AMD64)
    assert "line 2" in info.value.message and "line 3" in info.value.message


def test_unknown_target_suggests_a_stage() -> None:
    with pytest.raises(DockerfileError) as info:
        convert("FROM a AS build\n", BuildOptions(target="biuld"), AMD64)
    assert info.value.hint is not None and "build" in info.value.hint


def test_foreign_syntax_directive_warns() -> None:
    graph = convert("# syntax=example/frontend\nFROM a\n", OPTS, AMD64)
    assert "example/frontend" in graph.warnings[0].message


def test_graph_dump_lists_stages_args_and_ops() -> None:
    text = graph_dump(convert(SEED, OPTS, ARMV7))
    assert "[0] build FROM docker.io/library/golang:alpine on linux/amd64" in text
    assert "TARGETPLATFORM=linux/arm/v7" in text
    assert "image docker.io/library/alpine:latest" in text


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        ("alpine", "docker.io/library/alpine:latest"),
        ("user/app:1", "docker.io/user/app:1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("ghcr.io/org/app@sha256:" + "a" * 64, "ghcr.io/org/app@sha256:" + "a" * 64),
    ],
)
def test_references_normalised_as_docker_does(ref: str, normalized: str) -> None:
    assert normalize_reference(ref) == normalized


def test_invalid_reference_errors_keep_buildkits_words() -> None:
    with pytest.raises(DockerfileError) as info:
        convert("FROM Busybox\n", OPTS, AMD64)
    assert info.value.message == (
        "failed to parse stage name 'Busybox': "
        "invalid reference format: repository name must be lowercase: Busybox"
    )
    text = "FROM alpine AS build\nFROM alpine\nCOPY --from=Bulid /a /a\n"
    with pytest.raises(DockerfileError) as info:
        convert(text, OPTS, AMD64)
    assert info.value.line == 3
    assert info.value.hint == "did you mean the stage build?"
    with pytest.raises(DockerfileError, match="failed to parse stage name 'alpine:-x'"):
        convert("FROM alpine:-x\n", OPTS, AMD64)


def test_history_and_config_as_buildkit_v0_32_writes_them() -> None:
    """Compared with buildctl's output for the same Dockerfile (FROM scratch, so no base)."""
    from polybuild.dockerfile.gofmt import go_duration, go_quote

    text = (
        'FROM scratch\nLABEL org.example.x="y" other=z\nWORKDIR /app\n'
        'HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=2 CMD ["/bin/true"]\n'
        'ONBUILD RUN echo hi\nENTRYPOINT ["/bin/app"]\nCMD ["--serve", "a b"]\n'
    )
    config = convert(text, OPTS, AMD64).config
    made = [h.created_by for h in config.history]
    assert made == [
        "LABEL org.example.x=y other=z",
        "WORKDIR /app",  # a layer, but not an LLB state's: no "# buildkit"
        "HEALTHCHECK {Test:[CMD /bin/true] Interval:30s Timeout:3s StartPeriod:5s "
        "StartInterval:0s Retries:2}",
        'ENTRYPOINT ["/bin/app"]',  # ONBUILD makes no history entry
        'CMD ["--serve" "a b"]',
    ]
    assert config.config.args_escaped  # every CMD sets it
    assert config.config.on_build == ("RUN echo hi",)
    assert config.config.working_dir == "/app"
    assert [go_duration(n) for n in (0, 1_500_000_000, 90 * 10**9, 3600 * 10**9, 250_000_000)] == [
        "0s", "1.5s", "1m30s", "1h0m0s", "250ms"
    ]  # fmt: skip
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
