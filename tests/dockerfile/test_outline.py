"""BuildKit's outline of a target (dockerfile/outline.py) and how buildx prints it
(outline_render.py): which ARGs, secrets and ssh sockets count, their order, and the JSON's
fields as Go writes them. tests/buildkit/test_outline_differential.py compares the text
with a real BuildKit's."""

from __future__ import annotations

import base64
import json

import pytest

from polybuild.dockerfile.convert import default_args
from polybuild.dockerfile.outline import Outline, build_outline
from polybuild.dockerfile.outline_render import render_json, render_text
from polybuild.dockerfile.parser import parse
from polybuild.dockerfile.stages import from_parse_result
from polybuild.errors import DockerfileError
from polybuild.platforms import parse as parse_platform
from polybuild.tabwriter import tabwriter

AMD64 = parse_platform("linux/amd64")
ARGS = """\
# GO_VERSION sets the Go version
ARG GO_VERSION=1.22
ARG UNUSED=x
ARG BASE=scratch
ARG ALIAS=${BASE}
ARG NODEFAULT

# base is where it starts
FROM ${ALIAS} AS base
ARG GO_VERSION
ARG NODEFAULT
ENV E=1
# WITHENV expands <ENV> & ARG
ARG WITHENV=$E-$GO_VERSION
ARG EMPTY
"""
MOUNTS = """\
FROM scratch AS tools
RUN --mount=type=secret,id=token,required=true --mount=type=ssh true

FROM scratch AS other
RUN --mount=type=secret,id=optional --mount=type=ssh,id=github,required true
RUN --mount=type=secret,target=/run/from-target --mount=type=secret,id=envonly,env=X true

FROM scratch AS unused
RUN --mount=type=secret,id=never true

FROM tools AS release
COPY --from=other / /
RUN --mount=type=secret,id=token true
"""


def outline_of(text: str, target: str = "", **build_args: str) -> Outline:
    parsed = parse(text)
    df = from_parse_result(parsed)
    defaults = default_args(AMD64, AMD64, target or df.stages[-1].name or "default")
    return build_outline(parsed, df, text.encode(), target=target, build_args=build_args,
                         default_args=defaults)  # fmt: skip


def test_args_the_target_uses_in_line_order() -> None:
    outline = outline_of(ARGS)
    assert (outline.name, outline.description) == ("base", "is where it starts")
    got = [(a.name, a.value, a.location.start if a.location else 0) for a in outline.args]
    assert got == [
        ("GO_VERSION", "1.22", 2),  # redeclared without a value: the global one's entry
        ("BASE", "scratch", 4),  # ALIAS's default expanded it, and FROM expanded ALIAS
        ("ALIAS", "scratch", 5),
        ("NODEFAULT", "", 11),  # the global one has no value: the stage's own entry
        ("WITHENV", "1-1.22", 14),
        ("EMPTY", "", 15),
    ]
    assert outline.args[0].description == "sets the Go version"
    assert outline.args[4].description == "expands <ENV> & ARG"


def test_build_args_give_the_values() -> None:
    outline = outline_of(ARGS, GO_VERSION="1.23", EMPTY="set")
    values = {a.name: a.value for a in outline.args}
    assert values["GO_VERSION"] == "1.23" and values["EMPTY"] == "set"
    assert values["WITHENV"] == "1-1.23"


def test_mounts_of_the_target_its_base_and_its_sources() -> None:
    outline = outline_of(MOUNTS)
    secrets = [(s.name, s.required, s.location.start) for s in outline.secrets]
    # the target's own `token` (line 13, optional) is found before its base's (line 2)
    assert secrets == [("optional", False, 5), ("from-target", False, 6),
                       ("envonly", False, 6), ("token", False, 13)]  # fmt: skip
    assert [(s.name, s.required) for s in outline.ssh] == [("default", False), ("github", True)]
    assert [s.name for s in outline_of(MOUNTS, "unused").secrets] == ["never"]


def test_unknown_target_is_buildkits_error() -> None:
    with pytest.raises(DockerfileError, match='target stage "nope" could not be found'):
        outline_of(ARGS, "nope")


def test_text_tables_as_buildkits_tabwriter() -> None:
    text = render_text(outline_of(MOUNTS))
    assert text == (
        "TARGET: release\n"
        "\n"
        "SECRET        REQUIRED\n"
        "optional      \n"
        "from-target   \n"
        "envonly       \n"
        "token         \n"
        "\n"
        "SSH       REQUIRED\n"
        "default   \n"
        "github    true\n"
        "\n"
    )
    unnamed = render_text(outline_of("FROM scratch\nARG A=1\n"))
    assert unnamed == "BUILD ARG   VALUE   DESCRIPTION\nA           1       \n\n"
    assert tabwriter([("a", "bb", "c"), ("ccc", "", "")], 1) == "a   bb c\nccc    \n"


def test_json_as_the_frontends_result() -> None:
    text = render_json(outline_of(ARGS))
    assert '"description": "expands \\u003cENV\\u003e \\u0026 ARG"' in text  # Go's escapes
    document = json.loads(text)
    assert list(document) == ["name", "description", "args", "sources"]
    assert base64.b64decode(document["sources"][0]) == ARGS.encode()
    assert document["args"][0] == {
        "name": "GO_VERSION",
        "description": "sets the Go version",
        "value": "1.22",
        "location": {"ranges": [{"start": {"line": 2}, "end": {"line": 2}}]},
    }
    assert document["args"][-1] == {
        "name": "EMPTY",
        "location": {"ranges": [{"start": {"line": 15}, "end": {"line": 15}}]},
    }
    mounts = json.loads(render_json(outline_of(MOUNTS)))
    assert mounts["ssh"][1] == {
        "name": "github",
        "required": True,
        "location": {"ranges": [{"start": {"line": 5}, "end": {"line": 5}}]},
    }
    assert "description" not in mounts and "args" not in mounts
