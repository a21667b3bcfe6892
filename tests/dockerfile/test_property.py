"""Arbitrary text never crashes the frontend: it parses or raises DockerfileError with a line."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polybuild.dockerfile.convert import BuildOptions, convert
from polybuild.dockerfile.stages import load
from polybuild.errors import DockerfileError
from polybuild.platforms import parse
from tests.conftest import fuzz_examples

WORDS = [
    "FROM", "RUN", "COPY", "ADD", "ARG", "ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "CMD",
    "SHELL", "WORKDIR", "USER", "EXPOSE", "VOLUME", "STOPSIGNAL", "ENTRYPOINT", "MAINTAINER",
    "AS", "--from=", "--mount=", "type=cache,target=/x", "--platform=$BUILDPLATFORM", "<<EOF",
    "<<-'EOF'", "EOF", "\\", "`", "${A:-b}", "${A:?}", "$", '"', "'", "[", "]", '["a"]', ",", "=",
    "# escape=`", "# syntax=x", "\n", "\t", " ", "NONE", "--interval=1s", "--link", "--chmod=7",
]  # fmt: skip
dockerish = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=30).map(
    " ".join
)
OPTS = BuildOptions(build_platform=parse("linux/amd64"))


def _check(text: str) -> None:
    try:
        convert(load(text), OPTS, parse("linux/arm64"))
    except DockerfileError as exc:
        assert isinstance(exc.line, int)
        assert str(exc).startswith("Dockerfile")


@settings(
    max_examples=fuzz_examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    _check(text)


@settings(
    max_examples=fuzz_examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(dockerish)
def test_dockerfile_like_text(text: str) -> None:
    _check(text)


@settings(
    max_examples=fuzz_examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(dockerish)
def test_text_after_a_valid_from(text: str) -> None:
    _check("FROM alpine AS base\n" + text)


@settings(max_examples=fuzz_examples(500), deadline=None)
@given(
    st.lists(
        st.sampled_from(["$A", "${A}", "$B", "${B}", "$NOPE", "}", "{", "a", "/", ":", "_", "x1"])
    ).map("".join),
)
def test_fast_expansion_matches_the_lexer(word: str) -> None:
    from e2b_dockerfile_utils import ShellLex

    from polybuild.dockerfile.shell import expand_word

    env = {"A": "one", "B": "x y}"}
    assert expand_word(word, env) == ShellLex("\\", env=env, skip_unset_env=False).process_word(
        word
    )
