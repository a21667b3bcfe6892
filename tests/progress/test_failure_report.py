"""How the CLI reports a failed RUN step: BuildKit's Dockerfile excerpt, then buildx's
`ERROR: failed to build: failed to solve: ...` line, and the step's exit code."""

from __future__ import annotations

import click
import pytest

from polybuild.cli import LazyGroup, main
from polybuild.cli.exit_codes import exit_code_for
from polybuild.dockerfile.lint.report import excerpt
from polybuild.errors import StepFailedError

MESSAGE = 'process "/bin/sh -c exit 3" did not complete successfully: exit code: 3'


def run_failing(monkeypatch: pytest.MonkeyPatch, error: Exception) -> int:
    def fail() -> None:
        raise error

    command = click.Command("boom", callback=fail)
    monkeypatch.setattr(LazyGroup, "get_command", lambda self, ctx, name: command)
    with pytest.raises(SystemExit) as exited:
        main(["boom"])
    return int(exited.value.code or 0)


def test_a_failed_step_prints_the_excerpt_then_buildxs_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = StepFailedError(MESSAGE)
    error.step, error.lines = "[2/2] RUN exit 3", (2, 2)
    error.excerpt = excerpt("Dockerfile", "FROM busybox\nRUN exit 3\n", (error.lines,))
    code = run_failing(monkeypatch, error)
    assert code == exit_code_for(error)
    assert capsys.readouterr().err == (
        "Dockerfile:2\n"
        "--------------------\n"
        "   1 |     FROM busybox\n"
        "   2 | >>> RUN exit 3\n"
        "   3 |     \n"
        "--------------------\n"
        f"ERROR: failed to build: failed to solve: {MESSAGE}\n"
    )


def test_without_the_dockerfile_only_the_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_failing(monkeypatch, StepFailedError(f"[far]: {MESSAGE}"))  # from an ssh node
    assert capsys.readouterr().err == f"ERROR: failed to build: failed to solve: [far]: {MESSAGE}\n"
