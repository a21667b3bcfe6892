"""The root command as buildx has it: `version`, a root-level `--builder`, and `-D/--debug`
after the subcommand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_version_prints_name_and_version(tmp_path: Path) -> None:
    from polybuild import __version__

    done = run_cli(tmp_path / "root", "version")
    assert done.returncode == 0
    assert re.fullmatch(
        rf"polybuild v{re.escape(__version__)} \(python 3\.\d+\.\d+\)\n", done.stdout
    )


def test_a_root_builder_flag_chooses_the_builder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert run_cli(root, "create", "--name", "other").returncode == 0
    shown = run_cli(root, "--builder", "other", "inspect")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^Name:\s+other$", shown.stdout, re.MULTILINE), shown.stdout
    missing = run_cli(root, "--builder", "nosuch", "inspect")
    assert missing.returncode != 0 and "nosuch" in missing.stderr


def test_debug_may_follow_the_subcommand(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "root", "ls", "-D")
    assert done.returncode == 0, done.stderr
    failed = run_cli(tmp_path / "root", "inspect", "nosuch", "--debug")
    assert failed.returncode != 0
    assert "Traceback" in failed.stderr  # --debug shows where the error came from


def test_a_failed_build_exits_1_as_buildx_and_other_commands_keep_their_codes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from polybuild.cli.exit_codes import exit_code_for
    from polybuild.errors import (
        DockerfileError,
        ImageNotFoundError,
        RemoteError,
        StepFailedError,
        UsageError,
    )

    monkeypatch.delenv("POLYBUILD_EXIT_CODES", raising=False)
    for error in (StepFailedError("x"), DockerfileError("x"), RemoteError("x")):
        assert exit_code_for(error, "build") == 1
    assert exit_code_for(UsageError("x"), "build") == 2
    assert exit_code_for(KeyboardInterrupt(), "build") == 130
    assert exit_code_for(ImageNotFoundError("x"), "run") == 8  # not a buildx command
    monkeypatch.setenv("POLYBUILD_EXIT_CODES", "detailed")
    assert exit_code_for(StepFailedError("x"), "build") == 10


def test_the_command_name_is_found_after_root_options() -> None:
    from polybuild.cli import _command_name

    assert _command_name(["--debug", "--builder", "b", "build", "."]) == "build"
    assert _command_name(["-D", "imagetools", "inspect"]) == "imagetools"
