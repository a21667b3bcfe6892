"""Each BuildKit lint rule firing and not firing, with BuildKit v0.32.2's exact messages."""

from __future__ import annotations

import pytest

from polybuild.dockerfile.lint import lint_dockerfile


def shorts(source: str, **kw: object) -> list[str]:
    return [w.short() for w in lint_dockerfile(source, **kw).warnings]  # type: ignore[arg-type]


FIRES = [
    ("FROM alpine AS Base\n", "StageNameCasing: Stage name 'Base' should be lowercase (line 1)"),
    (
        "FROM alpine as base\n",
        "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
    ),
    (
        "FROM alpine\nRUN echo a \\\n\n  b\n",
        "NoEmptyContinuation: Empty continuation line (line 4)",
    ),
    (
        "FROM alpine\nRUN true\nrun true\nRUN true\n",
        "ConsistentInstructionCasing: Command 'run' should match the case of the command"
        " majority (uppercase) (line 3)",
    ),
    (
        "FROM alpine AS a\nFROM alpine AS a\n",
        'DuplicateStageName: Duplicate stage name "a", stage names should be unique (line 2)',
    ),
    (
        "FROM alpine AS context\n",
        'ReservedStageName: Stage name should not use the same name as reserved stage "context"'
        " (line 1)",
    ),
    (
        "FROM alpine\nENTRYPOINT sh\n",
        "JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended"
        " behavior related to OS signals (line 2)",
    ),
    (
        "FROM alpine\nMAINTAINER me\n",
        "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label"
        " (line 2)",
    ),
    (
        "ARG VERSION=1\nFROM alpine:${VERSIN}\n",
        "UndefinedArgInFrom: FROM argument 'VERSIN' is not declared (did you mean VERSION?)"
        " (line 2)",
    ),
    (
        "FROM alpine\nWORKDIR app\n",
        'WorkdirRelativePath: Relative workdir "app" can have unexpected results if the base'
        " image changes (line 2)",
    ),
    (
        "FROM scratch\nARG DIR=/x\nCOPY . $DIRR\n",
        "UndefinedVar: Usage of undefined variable '$DIRR' (did you mean $DIR?) (line 3)",
    ),
    (
        'FROM alpine\nCMD ["a"]\nCMD ["b"]\n',
        "MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the"
        " same stage because only the last one will be used (line 2)",
    ),
    (
        "FROM alpine\nLABEL a b\n",
        'LegacyKeyValueFormat: "LABEL key=value" should be used instead of legacy'
        ' "LABEL key value" format (line 2)',
    ),
    (
        "ARG TAG\nFROM alpine:${TAG}\n",
        "InvalidDefaultArgInFrom: Default value for ARG alpine:${TAG} results in empty or"
        " invalid base image name (line 2)",
    ),
    (
        "FROM --platform=linux/amd64 alpine\n",
        "FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value"
        ' "linux/amd64" (line 1)',
    ),
    (
        "FROM --platform=$TARGETPLATFORM alpine\n",
        "RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM is"
        " redundant as this is the default behavior (line 1)",
    ),
    (
        "FROM alpine\nENV DB_PASSWORD=x\n",
        "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data"
        ' (ENV "DB_PASSWORD") (line 2)',
    ),
    (
        "# check=experimental=InvalidDefinitionDescription\n\n# the base\nFROM alpine AS base\n",
        "InvalidDefinitionDescription: Comment for FROM should follow the format:"
        " `# base <description>` (line 4)",
    ),
    (
        "FROM alpine\nEXPOSE 80/TCP\n",
        "ExposeProtoCasing: Defined protocol '80/TCP' in EXPOSE instruction should be"
        " lowercase (line 2)",
    ),
    (
        "FROM alpine\nEXPOSE 127.0.0.1:80:80\n",
        "ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port"
        " mapping, found '127.0.0.1:80:80' (line 2)",
    ),
]

QUIET = [
    "FROM alpine AS base\n",
    "from alpine as base\n",
    "FROM alpine\nRUN echo a \\\n  b\n",
    "FROM alpine\nRUN true\nRUN true\n",
    "FROM alpine AS a\nFROM alpine AS b\n",
    'FROM alpine\nENTRYPOINT ["sh"]\n',
    'FROM alpine\nSHELL ["/bin/sh", "-c"]\nCMD sh\n',
    "ARG VERSION=1\nFROM alpine:${VERSION}\n",
    "FROM alpine\nWORKDIR /app\nWORKDIR sub\n",
    "FROM alpine\nARG DIR=/x\nCOPY . $DIR\n",
    "FROM alpine\nRUN echo $UNDEFINED_IN_RUN\n",
    'FROM alpine\nCMD ["a"]\n',
    "FROM alpine\nLABEL a=b\n",
    "ARG TAG=3\nFROM alpine:${TAG}\n",
    "FROM --platform=linux/amd64 alpine AS build-amd64\n",
    "FROM --platform=$BUILDPLATFORM alpine\n",
    "FROM alpine\nENV PUBLIC_KEY=x\nARG VERSION\n",
    "# base the base\nFROM alpine AS base\n",
    "FROM alpine\nEXPOSE 80/tcp 53/udp\n",
]


@pytest.mark.parametrize(("source", "expected"), FIRES, ids=[f[1].split(":")[0] for f in FIRES])
def test_rule_fires_with_buildkits_message(source: str, expected: str) -> None:
    assert expected in shorts(source)


@pytest.mark.parametrize("source", QUIET)
def test_rule_stays_quiet(source: str) -> None:
    assert shorts(source) == []


def test_copy_ignored_file_needs_the_ignore_patterns() -> None:
    source = "FROM alpine\nCOPY secret.txt /\nADD ok.txt /\n"
    assert shorts(source, ignore_patterns=("secret.txt",)) == [
        'CopyIgnoredFile: Attempting to Copy file "secret.txt" that is excluded by'
        " .dockerignore (line 2)"
    ]
    assert shorts(source) == []
    # an exclusion (!) makes the rule stay out, as BuildKit's
    assert shorts(source, ignore_patterns=("*.txt", "!ok.txt")) == []


def test_warning_carries_description_url_and_range() -> None:
    (warning,) = lint_dockerfile("FROM alpine\nRUN a \\\n  b \\\n  c\nMAINTAINER x\n").warnings
    assert warning.rule.url == "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"
    assert warning.rule.description == (
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author"
    )
    assert warning.ranges == ((5, 5),)


def test_multiple_instructions_points_at_the_ignored_one() -> None:
    results = lint_dockerfile("FROM a\nHEALTHCHECK NONE\nRUN x\nHEALTHCHECK NONE\n")
    assert [w.ranges for w in results.warnings] == [((2, 2),)]


def test_undefined_var_knows_parent_stage_env_and_declared_args() -> None:
    source = "FROM scratch AS a\nENV X=1\nFROM a\nARG Y\nWORKDIR /$X/$Y/$Z\n"
    assert shorts(source) == [
        "UndefinedVar: Usage of undefined variable '$Z' (did you mean $X?) (line 5)"
    ]


def test_a_target_build_lints_only_its_stages() -> None:
    source = "FROM alpine AS a\nMAINTAINER x\nFROM alpine AS b\nWORKDIR rel\n"
    partial = shorts(source, target="a", all_stages=False)
    # parse-time rules see the whole file; dispatch-time ones only the stages built
    assert partial == [
        "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label"
        " (line 2)"
    ]
    assert len(shorts(source)) == 2


def test_undefined_var_uses_the_base_image_environment() -> None:
    source = "FROM golang AS a\nWORKDIR $GOPATH/$NOPE\nFROM a\nCOPY x $GOPATH\n"
    envs = {"golang": {"PATH": "/usr/bin", "GOPATH": "/go"}}
    assert shorts(source, image_env=envs.get) == [
        "UndefinedVar: Usage of undefined variable '$NOPE' (line 2)"
    ]
    # an image whose environment is unknown may define anything: nothing is reported
    assert shorts(source) == []
