"""`--flag=BOOL` for boolean flags, as pflag reads them (buildx's `--push=true`)."""

from __future__ import annotations

import subprocess
import sys

from polybuild.cli import cli
from polybuild.cli.bool_flags import normalize


def test_bool_values_become_click_flags() -> None:
    argv = ["build", "--push=true", "-t", "x", "--no-cache=false", "--pull=1", "--load=F", "."]
    assert normalize(argv, cli) == ["build", "--push", "-t", "x", "--pull", "."]


def test_values_of_other_options_and_words_after_dashdash_stay() -> None:
    argv = ["build", "--build-arg", "--push=true", "--label=--load=true", ".", "--", "--push=1"]
    assert normalize(argv, cli) == argv
    # a word that is not a flag of the command it follows is not touched
    assert normalize(["imagetools", "inspect", "--push=true"], cli) == [
        "imagetools", "inspect", "--push=true"
    ]  # fmt: skip


def test_other_values_get_pflags_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "polybuild", "build", "--push=maybe", "."],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 125, proc.stderr
    assert proc.stderr.startswith(
        'invalid argument "maybe" for "--push" flag: strconv.ParseBool: parsing "maybe": '
        "invalid syntax"
    )
