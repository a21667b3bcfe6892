"""Flag errors in buildx's words and with its exit status (125): pflag's first line, then the
docker CLI's FlagErrorFunc text (buildx vendors docker/cli v29: `Usage:  ...` and `Run '...
--help' for more information`), for every command; other usage errors keep their own code."""

from __future__ import annotations

import pytest

from polybuild.cli import main
from polybuild.cli.exit_codes import FLAG_ERROR, USAGE

BUILD_USAGE = (
    "\n\nUsage:  polybuild build [OPTIONS] CONTEXT\n\n"
    "Run 'polybuild build --help' for more information\n"
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["--nope", "."], "unknown flag: --nope"),
        (["--nope=1", "."], "unknown flag: --nope"),
        (["-z", "."], "unknown shorthand flag: 'z' in -z"),
        (["-qz", "."], "unknown shorthand flag: 'z' in -qz"),
        ([".", "--tag"], "flag needs an argument: --tag"),
        ([".", "-qt"], "flag needs an argument: 't' in -qt"),
        (["-j", "x", "."], 'invalid argument "x" for "-j, --jobs" flag: '
         'strconv.ParseInt: parsing "x": invalid syntax'),
        (["--push=maybe", "."], 'invalid argument "maybe" for "--push" flag: '
         'strconv.ParseBool: parsing "maybe": invalid syntax'),
        (["--network=bogus", "."], 'invalid argument "bogus" for "--network" flag: '
         "'bogus' is not one of 'default', 'host', 'none'"),
    ],
)  # fmt: skip
def test_build_flag_errors_as_buildx(
    capsys: pytest.CaptureFixture[str], args: list[str], first_line: str
) -> None:
    code, out, err = run(capsys, "build", *args)
    assert (code, out) == (FLAG_ERROR, "")
    assert err == first_line + BUILD_USAGE


def test_every_command_and_the_root_word_them_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUILDX_BUILDER", "unused")  # restored after: the root --builder sets it
    code, _, err = run(capsys, "imagetools", "inspect", "--nope", "x")
    assert code == FLAG_ERROR
    assert err == (
        "unknown flag: --nope\n\nUsage:  polybuild imagetools inspect [OPTIONS] IMAGE\n\n"
        "Run 'polybuild imagetools inspect --help' for more information\n"
    )
    code, _, err = run(capsys, "--builder", "b", "du", "--verbose", "--bogus")
    assert code == FLAG_ERROR and err.startswith("unknown flag: --bogus\n\nUsage:  polybuild du ")
    code, _, err = run(capsys, "--nope", "ls")
    assert code == FLAG_ERROR
    assert err == (
        "unknown flag: --nope\n\nUsage:  polybuild [OPTIONS] COMMAND [ARGS]...\n\n"
        "Run 'polybuild --help' for more information\n"
    )


def test_other_usage_errors_keep_their_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "build")  # no CONTEXT: not a flag error
    assert code == USAGE and "Missing argument" in err
    code, _, err = run(capsys, "build", "--push=true", ".")  # pflag's form: a flag, then
    assert code == USAGE and "a name is needed to push" in err  # the request's own check
