"""`build --call outline` against BuildKit's own Dockerfile frontend: a real buildkitd v0.32.2
answers the `frontend.outline` subrequest (`buildctl ... --opt requestid=frontend.outline`,
as buildx sends it) and buildctl prints its result.txt, the text buildx prints too; ours must
be the same bytes. buildctl does not print result.json; the text is made from it (names,
values, descriptions, `required` and the order are all in it), and tests/dockerfile/
test_outline.py checks the JSON's other fields."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.buildkit.conftest import buildkitd, buildkitd_factory  # noqa: F401
from tests.conftest import SHARED, run_cli

pytestmark = [pytest.mark.root, pytest.mark.integration]

BUILDCTL = SHARED / "tools" / "buildkit" / "buildctl"

ARGS = """\
# the outline of a Dockerfile (no syntax directive: the daemon has no network)

# GO_VERSION sets the Go version
ARG GO_VERSION=1.22
ARG UNUSED=x
# BASE is the base image
ARG BASE=scratch
ARG ALIAS=${BASE}
ARG NODEFAULT

# base-builder is the base stage for building the project
FROM ${ALIAS} AS base-builder
# FOO is foo
ARG FOO=bar
ARG GO_VERSION
ARG NODEFAULT
ENV E=1
ARG WITHENV=$E-$FOO
ARG EMPTY
# QUOTED has quotes and <markup> & more
ARG QUOTED="a b & <c>"
"""

# One secret per RUN line: BuildKit orders secrets by line with an unstable sort over a
# Go map, so two on one line come in either order (polybuild keeps the line's order).
SECRETS = """\
FROM scratch AS tools
ARG TOOLS_ONLY=1
RUN --mount=type=secret,id=token,required=true --mount=type=ssh true

FROM scratch AS other
RUN --mount=type=secret,id=optional --mount=type=ssh,id=github,required true
RUN --mount=type=secret,target=/run/from-target true
RUN --mount=type=secret,id=envonly,env=X true

# release is what ships
FROM tools AS release
COPY --from=other / /
RUN --mount=type=secret,id=token true
"""

UNNAMED = """\
ARG V=1
FROM scratch
ARG LOCAL=$V
RUN --mount=type=ssh,id=deploy true
"""

TARGETS = """\
# first is a stage
FROM scratch AS first
ARG ONE=1

# second is another stage
FROM scratch AS second
ARG TWO=2
"""

CASES = {
    "args": (ARGS, ()),
    "args-given": (ARGS, ("--build-arg", "FOO=given", "--build-arg", "BASE=scratch")),
    "secrets-ssh": (SECRETS, ()),
    "unnamed": (UNNAMED, ()),
    "named-target": (TARGETS, ("--target", "first")),
}


def buildkit_outline(address: str, directory: Path, flags: tuple[str, ...]) -> str:
    assert BUILDCTL.is_file(), f"buildctl is not at {BUILDCTL} (../shared/tools/buildkit)"
    opts = []
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        opts += ["--opt", f"build-arg:{value}" if flag == "--build-arg" else f"target={value}"]
    done = subprocess.run(
        [str(BUILDCTL), "--addr", address, "build", "--frontend", "dockerfile.v0",
         "--local", f"context={directory}", "--local", f"dockerfile={directory}",
         "--opt", "requestid=frontend.outline", *opts],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_outline_text_is_buildkits(
    buildkitd: str,  # noqa: F811 (the daemon's address)
    tmp_path: Path,
    case: str,
) -> None:
    dockerfile, flags = CASES[case]
    (tmp_path / "Dockerfile").write_text(dockerfile)
    ours = run_cli(tmp_path / "root", "build", "--call", "outline", *flags, str(tmp_path))
    assert ours.returncode == 0, ours.stderr
    theirs = buildkit_outline(buildkitd, tmp_path, flags)
    assert theirs.strip(), "buildctl printed no outline"
    assert ours.stdout == theirs
