"""Differential: BuildKit v0.32.2's own lint (the dockerfile frontend's `frontend.lint`
subrequest, as buildx's --call check sends it, through buildctl) and polybuild's print the
same warnings, in the same order, with the same excerpts, for a set of Dockerfiles.

The files build FROM scratch or their own stages only, so the daemon resolves no image."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from polybuild.dockerfile.ignore import load_patterns
from polybuild.dockerfile.lint import lint_dockerfile, render_check
from tests.buildkit.conftest import buildkitd, buildkitd_factory  # noqa: F401
from tests.conftest import SHARED

pytestmark = [pytest.mark.root, pytest.mark.integration]

BUILDCTL = SHARED / "tools" / "buildkit" / "buildctl"

CASES = {
    "casing": "FROM scratch\nrun true\nCOPY a b\ncopy c d\nCOPY e f\n",
    "lower": "from scratch as base\nrun true\nFROM scratch\n",
    "stages": (
        "FROM scratch AS Build\nFROM scratch AS build\nFROM scratch AS context\nFROM scratch as x\n"
    ),
    "continuation": "FROM scratch\nRUN echo a \\\n\n  b\nCOPY x \\\n\n  /y\n",
    "from-args": (
        "ARG VERSION=1\nFROM scratch${VERSIN}\nFROM --platform=$TARGETPLATFORM scratch\n"
        "FROM --platform=linux/arm64 scratch AS a\n"
        "FROM --platform=linux/arm64 scratch AS arm64-stage\n"
    ),
    "default-arg": "ARG BASE\nFROM ${BASE}\n",
    "arg-from": "ARG IMG=scratch\nARG TAG\nFROM ${IMG}\nFROM ${IMG}:${TAG}\nFROM $IMAGE\n",
    "vars": (
        "FROM scratch AS a\nENV X=1\nCOPY $X $Y /\nFROM a\nARG Z\nWORKDIR /$X/$Z/$W\n"
        "LABEL k=${Q:-v}\nUSER $U\n"
    ),
    "workdir": "FROM scratch\nWORKDIR app\nWORKDIR sub\nFROM scratch\nWORKDIR /abs\nWORKDIR rel\n",
    "once": (
        'FROM scratch\nCMD ["a"]\nENTRYPOINT ["b"]\nHEALTHCHECK NONE\nCMD ["c"]\n'
        'ENTRYPOINT ["d"]\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n'
    ),
    "legacy-and-secrets": (
        "FROM scratch\nENV a b\nENV c=d e=f\nLABEL g h i\nENV API_KEY=1\nARG GITHUB_TOKEN\n"
        "ARG PUBLIC_KEY=x\nENV SECRET_VERSION=1\nARG password\nENV a b c d\n"
    ),
    "expose": "FROM scratch\nEXPOSE 80/TCP 53/Udp 8080:80 127.0.0.1:1:2/tcp 90\n",
    "json-args": (
        'FROM scratch\nCMD echo hi\nENTRYPOINT run it\nFROM scratch\nSHELL ["/bin/bash", "-c"]\n'
        "CMD echo hi\n"
    ),
    "skip": (
        "# check=skip=JSONArgsRecommended,MaintainerDeprecated\nFROM scratch\nCMD echo hi\n"
        "MAINTAINER me\nWORKDIR rel\n"
    ),
    "skip-all": "# check=skip=all\nFROM scratch\nCMD echo hi\n",
    "comment-skip": (
        "FROM scratch\n# check=skip=JSONArgsRecommended\nCMD echo hi\nENTRYPOINT echo hi\n"
    ),
    "experimental": (
        "# check=experimental=all\n\n# builder stage\nFROM scratch AS base\n# NAME the name\n"
        "ARG NAME\n# wrong comment\nARG A B\n"
    ),
    "description-comments": (
        "# check=experimental=all\nFROM scratch AS base\n# wrong\n\nARG A\n# also wrong\n#\n"
        "ARG B\n# check=skip=WorkdirRelativePath\n\nWORKDIR rel\n# A real\nARG A\n"
    ),
    "heredoc": "FROM scratch\nCOPY <<EOF /x\n$UNDEF\nEOF\nARG A=$B\n",
    "secrets": (
        "FROM scratch\nARG AUTH\nARG AUTH_FILE\nENV NPM_TOKEN=1 KEYS=2 MY_KEY=3 TOKENIZER=4\n"
        "ARG password_version\n"
    ),
    "stage-bases": "FROM scratch AS base\nFROM base\nFROM base AS Other\nCOPY --from=base a b\n",
}


def buildkit_lint(address: str, directory: Path, *extra: str) -> str:
    """The daemon's result.txt for the Dockerfile in `directory` (buildctl prints it)."""
    assert BUILDCTL.is_file(), f"buildctl is not at {BUILDCTL} (../shared/tools/buildkit)"
    done = subprocess.run(
        [str(BUILDCTL), "--addr", address, "build", "--frontend", "dockerfile.v0",
         "--local", f"context={directory}", "--local", f"dockerfile={directory}",
         "--opt", "requestid=frontend.lint", *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


IGNORED = {
    "ignored": (
        "FROM scratch\nCOPY secret.txt /\nADD dir/sub/f /x\nCOPY ok.txt /\nCOPY . /\n"
        "COPY --from=scratch secret.txt /\n",
        "secret.txt\ndir\n",
    ),
    "ignored-root": ("FROM scratch\nCOPY . /\n", "*\n"),
}


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_copy_ignored_file_matches_buildkit(name: str, buildkitd: str, tmp_path: Path) -> None:  # noqa: F811
    text, ignore = IGNORED[name]
    (tmp_path / "Dockerfile").write_text(text)
    (tmp_path / ".dockerignore").write_text(ignore)
    theirs = buildkit_lint(buildkitd, tmp_path)
    results = lint_dockerfile(text, ignore_patterns=load_patterns(tmp_path))
    assert theirs.count("WARNING: CopyIgnoredFile") >= 1
    assert render_check(results).split("\n", 1)[1] == theirs


def test_a_target_lints_only_its_stages_as_buildkit(buildkitd: str, tmp_path: Path) -> None:  # noqa: F811
    text = "FROM scratch AS a\nWORKDIR rel\nFROM scratch AS b\nWORKDIR rel2\nMAINTAINER x\n"
    (tmp_path / "Dockerfile").write_text(text)
    theirs = buildkit_lint(buildkitd, tmp_path, "--opt", "target=a")
    results = lint_dockerfile(text, target="a", all_stages=False)
    assert 'Relative workdir "rel2"' not in theirs
    assert render_check(results).split("\n", 1)[1] == theirs


@pytest.mark.parametrize("name", sorted(CASES))
def test_warnings_match_buildkit(name: str, buildkitd: str, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "Dockerfile").write_text(CASES[name])
    theirs = buildkit_lint(buildkitd, tmp_path)
    results = lint_dockerfile(CASES[name])
    # result.txt is buildx's text without its "Check complete" line
    ours = render_check(results).split("\n", 1)[1] if results.warnings else ""
    assert ours == theirs


def test_cases_exercise_the_rules() -> None:
    fired = {w.rule.name for source in CASES.values() for w in lint_dockerfile(source).warnings}
    assert len(fired) >= 18, sorted(fired)
