"""`polybuild build --call check`: buildx's text and BuildKit's JSON, the directive, the
build argument and the exit status, through the CLI."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from polybuild.cli import main

DOCKERFILE = "FROM alpine as base\nCMD echo hi\n"

# What buildx prints for DOCKERFILE (commands/build.go printResult, lint.PrintTo and
# errdefs.Source.Print): the count, then each warning with its excerpt, lines sorted.
EXPECTED_TEXT = """Check complete, 2 warnings have been found!

WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/
'as' and 'FROM' keywords' casing do not match
Dockerfile:1
--------------------
   1 | >>> FROM alpine as base
   2 |     CMD echo hi
   3 |     {blank}
--------------------

WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/
JSON arguments recommended for CMD to prevent unintended behavior related to OS signals
Dockerfile:2
--------------------
   1 |     FROM alpine as base
   2 | >>> CMD echo hi
   3 |     {blank}
--------------------
""".format(blank="")


Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def invoke(capsys: pytest.CaptureFixture[str]) -> Invoke:
    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture
def run(invoke: Invoke, tmp_path: Path) -> Callable[..., tuple[int, str]]:
    def call(text: str, *args: str) -> tuple[int, str]:
        (tmp_path / "Dockerfile").write_text(text)
        code, out, _ = invoke("build", *args, str(tmp_path))
        return code, out

    return call


Run = Callable[..., tuple[int, str]]


def test_check_text_is_buildx_s(run: Run) -> None:
    code, out = run(DOCKERFILE, "--call", "check")
    assert out == EXPECTED_TEXT
    assert code == 1


def test_check_flag_is_an_alias(run: Run) -> None:
    assert run(DOCKERFILE, "--check") == (1, EXPECTED_TEXT)


def test_no_warnings(run: Run) -> None:
    code, out = run('FROM alpine AS base\nCMD ["x"]\n', "--check")
    assert (code, out) == (0, "Check complete, no warnings found.\n")


def test_check_json_is_buildkit_s(run: Run) -> None:
    code, out = run(DOCKERFILE, "--call", "check,format=json")
    value = json.loads(out)
    assert value["warnings"][0] == {
        "ruleName": "FromAsCasing",
        "description": "The 'as' keyword should match the case of the 'from' keyword",
        "url": "https://docs.docker.com/go/dockerfile/rule/from-as-casing/",
        "detail": "'as' and 'FROM' keywords' casing do not match",
        "location": {"ranges": [{"start": {"line": 1}, "end": {"line": 1}}]},
    }
    assert value["sources"] == [
        {
            "filename": "Dockerfile",
            "data": base64.b64encode(DOCKERFILE.encode()).decode(),
            "language": "Dockerfile",
        }
    ]
    # Go's json.MarshalIndent layout
    assert out.startswith('{\n  "warnings": [\n    {\n      "ruleName": "FromAsCasing",\n')
    assert code == 1


def test_directive_skips_rules(run: Run) -> None:
    text = "# check=skip=FromAsCasing,JSONArgsRecommended\n" + DOCKERFILE
    assert run(text, "--check") == (0, "Check complete, no warnings found.\n")
    text = "# check=skip=all\n" + DOCKERFILE
    assert run(text, "--check")[0] == 0


def test_build_arg_replaces_the_directive(run: Run) -> None:
    text = "# check=skip=all\n" + DOCKERFILE
    code, out = run(text, "--check", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=FromAsCasing")
    assert code == 1
    assert out.startswith("Check complete, 1 warning has been found!\n")
    assert "JSONArgsRecommended" in out


def test_bad_directive_is_an_error(invoke: Invoke, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("# check=error=maybe\nFROM alpine\n")
    code, out, err = invoke("build", "--check", str(tmp_path))
    assert code != 0
    assert 'failed to parse check option "error=maybe"' in out + err


def test_call_values(invoke: Invoke, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert invoke("build", "--call", "lint", str(tmp_path))[:2] == (
        0,
        "Check complete, no warnings found.\n",
    )
    code, _, err = invoke("build", "--call", "check,format=yaml", str(tmp_path))
    assert code == 2
    assert "--call: invalid option 'format=yaml'" in err
